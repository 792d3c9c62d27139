import type { FastifyPluginAsync } from "fastify"
import { Redacted } from "effect"
import { makeAuthenticator } from "../api/auth/apiTokens.js"
import { makeBotWrites } from "../api/rest/botWrites.js"
import type { NodeHooks } from "../api/rest/botWrites.js"
import { restApi } from "../api/rest/restApi.js"
import { dashboardRoutes } from "../api/dashboard/dashboardRoutes.js"
import { retryOnPostgres, retryOnRedis } from "../cli/commands/dlqRetry.js"
import type { BotfleetConfig } from "../config.js"
import { anchorKeyFrom } from "../projections/auditChain.js"
import type { NodeStores } from "./stores.js"

/**
 * The REST API a node serves (src/api/rest), over the node's stores. Bot changes go to the node's
 * own actors once `attach` gave it the supervisor (before that, and for bots other nodes run, the
 * CLI's way: under the bot's lease or over the control channel).
 */
export const nodeApi = (config: BotfleetConfig, stores: NodeStores, logRequest: (line: Readonly<Record<string, unknown>>) => void) => {
  let hooks: NodeHooks | null = null
  const rest = restApi({
    sql: stores.sql,
    log: stores.log,
    inbox: stores.inbox,
    writes: makeBotWrites({ config, log: stores.log, sql: stores.sql, node: () => hooks, userKeys: { keys: stores.userKeys, cache: stores.keyCache } }),
    partitions: config.partitions,
    retryDeadLetter: (d) => (stores.redis !== null ? retryOnRedis(stores.redis, config.redisPrefix, d) : retryOnPostgres(stores.sql, d)),
    anchorKey: anchorKeyFrom(Redacted.value(config.secretKey)),
    nodeId: config.nodeId,
    rateLimitPerMinute: config.apiRateLimit,
    logRequest,
    keyCache: stores.keyCache,
    authenticate: makeAuthenticator(stores.sql)
  })
  const plugin: FastifyPluginAsync = async (app) => {
    await app.register(rest)
    await app.register(dashboardRoutes)
  }
  return { plugin, attach: (h: NodeHooks) => void (hooks = h) }
}
