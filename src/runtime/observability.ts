import type { FastifyPluginAsync } from "fastify"
import type { Supervisor } from "../actors/supervisor.js"
import { healthRoutes } from "../api/healthRoutes.js"
import { httpMetrics } from "../api/httpMetrics.js"
import { metricsRoute } from "../api/metricsRoute.js"
import type { BotfleetConfig } from "../config.js"
import { instrumentInbox, instrumentLog, instrumentSql } from "../metrics/instrumentStores.js"
import { makeGaugeRefresh } from "../metrics/nodeGauges.js"
import { configureMetrics, setNodeInfo } from "../metrics/registry.js"
import { makeReadiness } from "./readiness.js"
import type { Readiness } from "./readiness.js"
import type { NodeStores } from "./stores.js"
import { infoAcrossMasters } from "../health/redisHealth.js"

/** What a node serves about itself: `/metrics`, `/health`, `/ready`, and the readiness it reports. */
export interface NodeObservability {
  /** Stores whose calls are measured (append latency, dead letters, store errors): what the node uses. */
  readonly stores: NodeStores
  readonly readiness: Readiness
  /** For the node's HTTP server, beside the webhook ingress. */
  readonly plugins: ReadonlyArray<FastifyPluginAsync>
  /** The supervisor, once it runs (the actor gauges read it). */
  readonly attachSupervisor: (supervisor: Supervisor) => void
}

/**
 * Sets up a node's metrics (METRICS_BOT_LABELS, the node's name and mode), wraps its stores so
 * their calls are measured, and builds the routes that report on it. The log and inboxes are the
 * database's in embedded mode (PGlite), Redis's in production.
 */
export const observeNode = (config: BotfleetConfig, raw: NodeStores): NodeObservability => {
  configureMetrics({ botLabels: config.metricsBotLabels })
  setNodeInfo(config.nodeId, config.mode)
  const embedded = config.mode === "embedded"
  const logStore = embedded ? "pglite" : "redis"
  const stores: NodeStores = {
    ...raw,
    sql: instrumentSql(raw.sql, embedded ? "pglite" : "postgres"),
    log: instrumentLog(raw.log, logStore),
    inbox: instrumentInbox(raw.inbox, logStore)
  }
  const readiness = makeReadiness({ sql: stores.sql, redis: stores.redis })
  let supervisor: Supervisor | null = null
  // Redis memory of the whole cluster in cluster mode (summed over its masters)
  const redis = stores.redis
  const redisInfo = redis ? { info: (section: string) => infoAcrossMasters(redis, section) } : null
  const refresh = makeGaugeRefresh({ supervisor: () => supervisor, log: stores.log, sql: stores.sql, redis: redisInfo })
  return {
    stores,
    readiness,
    plugins: [httpMetrics, metricsRoute({ refresh }), healthRoutes({ readiness, nodeId: config.nodeId })],
    attachSupervisor: (s) => {
      supervisor = s
    }
  }
}
