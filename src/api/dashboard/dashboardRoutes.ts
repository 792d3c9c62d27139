import { readFile } from "node:fs/promises"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import type { FastifyPluginAsync } from "fastify"

/*
 * `/dashboard`: one page that logs in with an API token (kept in the tab's sessionStorage only)
 * and shows what the REST API returns: an owner's bots with their state and last activity,
 * per-bot charts and recent conversations; with an admin token, the fleet's nodes, partitions,
 * lag and dead letters (with retry). Chart.js is served from node_modules, never a CDN.
 */

const chartFile = () => join(dirname(createRequire(import.meta.url).resolve("chart.js")), "chart.umd.min.js")

export const dashboardRoutes: FastifyPluginAsync = async (app) => {
  const page = await readFile(new URL("./dashboard.html", import.meta.url), "utf8")
  const script = await readFile(new URL("./dashboard.js", import.meta.url), "utf8")
  const chart = await readFile(chartFile(), "utf8")
  const headers = {
    "cache-control": "no-cache",
    // scripts and styles from this node only; data only from its API
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'"
  }
  app.get("/dashboard", { schema: { hide: true } }, async (_req, reply) => reply.headers(headers).type("text/html; charset=utf-8").send(page))
  app.get("/dashboard/app.js", { schema: { hide: true } }, async (_req, reply) => reply.header("cache-control", "no-cache").type("text/javascript; charset=utf-8").send(script))
  app.get("/dashboard/chart.js", { schema: { hide: true } }, async (_req, reply) =>
    reply.header("cache-control", "public, max-age=3600").type("text/javascript; charset=utf-8").send(chart)
  )
}
