import type { FastifyPluginAsync } from "fastify"
import type { Readiness } from "../runtime/readiness.js"

/**
 * `GET /health`: the node process is alive and serving HTTP (200 while it runs, draining
 * included). `GET /ready`: it should be sent traffic: 200 when its stores answer, every
 * migration is applied and its supervisor runs; otherwise 503 with the reason (`reason`, and
 * each check under `checks`). Neither needs a token; neither shows a secret.
 */
export const healthRoutes = (o: { readonly readiness: Readiness; readonly nodeId: string }): FastifyPluginAsync =>
  async (app) => {
    const startedAt = Date.now()
    app.get("/health", async () => ({ status: "alive", nodeId: o.nodeId, phase: o.readiness.phase(), uptimeSeconds: Math.round((Date.now() - startedAt) / 1000) }))
    app.get("/ready", async (_req, reply) => {
      const report = await o.readiness.check()
      return reply.code(report.ready ? 200 : 503).send({ nodeId: o.nodeId, ...report })
    })
  }
