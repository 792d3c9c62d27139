import type { FastifyPluginAsync } from "fastify"
import { observeHttp } from "../metrics/registry.js"

/**
 * Counts and times every request the node's HTTP server answers (the webhook ingress, the API,
 * /metrics...), by route template (`/telegram/:botId`, never the URL with its ids) and status.
 * Requests that match no route count under `unmatched`, so probes of random URLs add no series.
 */
const plugin: FastifyPluginAsync = async (app) => {
  app.addHook("onResponse", async (req, reply) => {
    observeHttp(req.routeOptions.url ?? "unmatched", req.method, reply.statusCode, reply.elapsedTime / 1000)
  })
}
// the hook must see the routes of the whole server, not only this plugin's: what fastify-plugin
// does, without the dependency (fastify documents the symbol)
;(plugin as unknown as Record<symbol, boolean>)[Symbol.for("skip-override")] = true

export const httpMetrics: FastifyPluginAsync = plugin
