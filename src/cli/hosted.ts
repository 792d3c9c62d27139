import { Effect, Layer } from "effect"
import type { Scope } from "effect"
import type { ActorCommand } from "../actors/actor.js"
import type { BotfleetConfig } from "../config.js"
import { Sql } from "../db/sql.js"
import { EventLog } from "../events/eventLog.js"
import type { EventLogService } from "../events/eventLog.js"
import { openStores } from "../runtime/stores.js"
import type { NodeStores, StoresUnavailable } from "../runtime/stores.js"
import type { HostedNode } from "./hostedNode.js"
import type { CliIo } from "./io.js"
import { eventLogAndSqlLayer } from "./logAndSql.js"
import { eventLogLayer, sqlLayer } from "./runtime.js"

/*
 * A CLI command run inside the embedded node that holds DATA_DIR (sent by another process through
 * the node's CLI endpoint, cli/remote/). PGlite allows one process per folder, so such a command
 * must not open the database: it works on the node's own stores, and a change to a bot the node
 * runs goes to that bot's actor (the node holds its lease; there is no control channel in embedded
 * mode). Everything else — parsing, checks, output, exit codes — is the command's usual code.
 */

/** The stores of the command: the hosting node's (not closed by the command), or opened for it in the scope. */
export const storesFor = (io: CliIo, config: BotfleetConfig): Effect.Effect<NodeStores, StoresUnavailable, Scope.Scope> =>
  io.host !== undefined ? Effect.succeed(io.host.stores) : openStores(config)

/** `eventLogLayer`, or the hosting node's log. */
export const eventLogLayerFor = (io: CliIo) => (config: BotfleetConfig) =>
  io.host !== undefined ? Layer.succeed(EventLog, io.host.stores.log) : eventLogLayer(config)

/** `eventLogAndSqlLayer`, or the hosting node's log and database. */
export const eventLogAndSqlLayerFor = (io: CliIo) => (config: BotfleetConfig) =>
  io.host !== undefined
    ? Layer.merge(Layer.succeed(EventLog, io.host.stores.log), Layer.succeed(Sql, io.host.stores.sql))
    : eventLogAndSqlLayer(config)

/** `sqlLayer`, or the hosting node's database. */
export const sqlLayerFor = (io: CliIo) => (config: BotfleetConfig) => (io.host !== undefined ? Layer.succeed(Sql, io.host.stores.sql) : sqlLayer(config))

/** A change applied by a bot's actor on the hosting node: what it recorded. */
export interface AppliedHere {
  readonly botId: string
  readonly events: ReadonlyArray<string>
  readonly version: number
  readonly node: string
}

/**
 * Runs `command` through the bot's actor when the given node runs the bot; null when it does not
 * (not supervised, passivated, stopped): the caller then records the change itself under the
 * bot's lease, which nobody holds. `recorded` names the event the command records.
 */
export const applyOnNode = (
  node: ReturnType<HostedNode["node"]>,
  log: EventLogService,
  botId: string,
  command: ActorCommand,
  recorded: string,
  nodeId: string
) =>
  Effect.gen(function* () {
    if (node === null) return null
    const status = yield* node.supervisor.status(botId)
    if (status?.state !== "running") return null
    const before = yield* log.streamVersion(botId)
    const sent = yield* Effect.either(node.supervisor.send(botId, command))
    if (sent._tag === "Left") {
      if (sent.left._tag === "NotRunning") return null
      return yield* sent.left
    }
    return { botId, events: sent.right.version > before ? [recorded] : [], version: sent.right.version, node: nodeId } satisfies AppliedHere
  })
