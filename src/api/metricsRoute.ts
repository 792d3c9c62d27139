import type { FastifyPluginAsync } from "fastify"
import { metricsContentType, renderMetrics } from "../metrics/registry.js"

/**
 * `GET /metrics`: the node's metrics in the Prometheus text format. The gauges read from the
 * stores are refreshed first (`refresh` never fails and has deadlines, so a scrape answers even
 * with a store down). Nothing in it names a user, a chat or a token (registry.ts).
 */
export const metricsRoute = (o: { readonly refresh: () => Promise<void> }): FastifyPluginAsync =>
  async (app) => {
    app.get("/metrics", async (_req, reply) => {
      await o.refresh()
      const text = await renderMetrics()
      return reply.header("content-type", metricsContentType()).send(text)
    })
  }
