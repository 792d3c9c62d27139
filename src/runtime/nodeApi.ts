import type { FastifyPluginAsync } from "fastify"
import { Effect, Redacted } from "effect"
import { cliEndpoint } from "../api/cliEndpoint.js"
import { makeCredential, removeEndpoint, writeEndpoint } from "../cli/remote/endpointFile.js"
import type { CliIo } from "../cli/io.js"
import { makeAuthenticator } from "../api/auth/apiTokens.js"
import { makeBotWrites } from "../api/rest/botWrites.js"
import type { NodeHooks } from "../api/rest/botWrites.js"
import { restApi } from "../api/rest/restApi.js"
import { dashboardRoutes } from "../api/dashboard/dashboardRoutes.js"
import { retryOnPostgres, retryOnRedis } from "../cli/commands/dlqRetry.js"
import type { BotfleetConfig } from "../config.js"
import { anchorKeyFrom } from "../projections/auditChain.js"
import type { NodeStores } from "./stores.js"

/** The CLI a node runs other processes' commands with (cli/main.ts `main`), and the environment its configuration came from. */
export interface NodeCli {
  readonly run: (argv: ReadonlyArray<string>, io: CliIo) => Promise<number>
  readonly env: Readonly<Record<string, string | undefined>>
}

/**
 * The REST API a node serves (src/api/rest), over the node's stores. Bot changes go to the node's
 * own actors once `attach` gave it the supervisor (before that, and for bots other nodes run, the
 * CLI's way: under the bot's lease or over the control channel).
 */
export const nodeApi = (
  config: BotfleetConfig,
  stores: NodeStores,
  logRequest: (line: Readonly<Record<string, unknown>>) => void,
  cli?: NodeCli
) => {
  let hooks: NodeHooks | null = null
  // embedded mode: CLI commands of other processes run here, on this node's stores (cli/remote/)
  const credential = config.mode === "embedded" && cli !== undefined ? makeCredential() : null
  const commands = credential !== null && cli !== undefined ? cliEndpoint({ credential, run: cli.run, env: cli.env, host: { stores, node: () => hooks } }) : null
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
    authenticate: makeAuthenticator(stores.sql, { cacheMs: config.apiTokenCacheSeconds * 1000 })
  })
  const plugin: FastifyPluginAsync = async (app) => {
    await app.register(rest)
    await app.register(dashboardRoutes)
    if (commands !== null) await app.register(commands.plugin)
  }
  /**
   * Publishes where CLI commands reach this node (DATA_DIR/pglite.node.json) for the life of the
   * scope; at its end the file goes first, then commands still running (a `tail`) are ended.
   */
  const advertise = (url: string) =>
    credential === null || commands === null
      ? Effect.void
      : Effect.acquireRelease(Effect.sync(() => writeEndpoint(config.pgliteDir, { url, credential })), () =>
          Effect.sync(() => {
            removeEndpoint(config.pgliteDir)
            commands.closeAll()
          })
        )
  return { plugin, attach: (h: NodeHooks) => void (hooks = h), advertise }
}
