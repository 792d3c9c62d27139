import { Effect, Option, Redacted } from "effect"
import type { ActorCommand } from "../../actors/actor.js"
import type { Duration } from "effect"
import type { Supervisor } from "../../actors/supervisor.js"
import { applyOnNode } from "../../cli/hosted.js"
import { applyOrAskNode, cliLeaseOwner, UnknownBot } from "../../cli/bots/lifecycle.js"
import { foldBot, unlistBot } from "../../cli/bots/botRows.js"
import { checkPatch } from "../../cli/bots/configure.js"
import type { BotfleetConfig } from "../../config.js"
import type { SqlClient } from "../../db/sql.js"
import type { EventLogService } from "../../events/eventLog.js"
import { restartIfRunning, sendControl } from "../../runtime/control.js"
import { makeRedisInbox } from "../../actors/redisInbox.js"
import { forgetUser } from "../../privacy/forgetUser.js"
import type { ForgetReport } from "../../privacy/forgetUser.js"
import type { KeyCache } from "../../privacy/keyCache.js"
import { openUserKeys } from "../../privacy/sealingLog.js"
import type { UserKeys } from "../../privacy/userKeys.js"
import { makeFleetDirectory } from "../../runtime/fleetDirectory.js"
import { registerBot } from "../../runtime/registerBot.js"
import { checkAndSealToken } from "../../telegram/registration.js"
import { makeTokenVault, telegramIdOfToken } from "../../telegram/tokenVault.js"
import { ApiError } from "./apiErrors.js"

/*
 * How the API changes bots: the same functions as `botfleet bots …` (cli/bots), so a change made
 * over HTTP is checked, recorded and fenced exactly as one made from a shell. One difference: the
 * API runs inside a node, which may itself be running the bot (always so in embedded mode, where
 * there is no control channel); such a command goes straight to this node's actor.
 */

export interface Changed {
  readonly botId: string
  /** Event types recorded (empty: already so). */
  readonly events: ReadonlyArray<string>
  readonly version: number
}

export interface BotWrites {
  readonly add: (o: { readonly botId: string; readonly ownerId: string; readonly name?: string; readonly kind: string; readonly mode: "polling" | "webhook"; readonly token: Redacted.Redacted<string> }) => Effect.Effect<{ readonly botId: string; readonly username: string; readonly telegramId: number }, unknown>
  readonly configure: (botId: string, patch: unknown, actor: string) => Effect.Effect<Changed, unknown>
  readonly start: (botId: string) => Effect.Effect<{ readonly botId: string; readonly listed: true }, unknown>
  readonly stop: (botId: string, reason: string, actor: string) => Effect.Effect<Changed, unknown>
  readonly remove: (botId: string, reason: string, actor: string) => Effect.Effect<Changed, unknown>
  readonly rotateToken: (botId: string, token: Redacted.Redacted<string>, actor: string) => Effect.Effect<Changed, unknown>
  /** `users forget` (docs/privacy.md): destroys the user's key, purges their rows, records UserForgotten. */
  readonly forgetUser: (botId: string, userIdText: string, actor: string, onProgress?: (line: string) => void) => Effect.Effect<ForgetReport, unknown>
}

/** The node's side of it, once its supervisor runs (absent: every command goes the CLI's way). */
export interface NodeHooks {
  readonly supervisor: Supervisor
  readonly startBot: (botId: string) => Effect.Effect<void>
}

export const makeBotWrites = (o: {
  readonly config: BotfleetConfig
  readonly log: EventLogService
  readonly sql: SqlClient
  readonly node: () => NodeHooks | null
  /** The process's user keys and their cache (a node's stores); absent: a cache of its own over `sql`. */
  readonly userKeys?: { readonly keys: UserKeys; readonly cache: KeyCache }
  /** How long `forgetUser` waits before its second purge (default: the key cache's TTL plus a second). */
  readonly forgetSettle?: Duration.DurationInput
}): BotWrites => {
  const vault = makeTokenVault(o.config.secretKey)
  const privacy = o.userKeys ?? openUserKeys(o.sql, Redacted.value(o.config.secretKey), { listen: false })
  const control = (timeoutMs = 15_000) =>
    Option.isSome(o.config.redisUrl) ? { redisUrl: Redacted.value(o.config.redisUrl.value), prefix: o.config.redisPrefix, timeoutMs } : null
  const versionOf = (botId: string) => o.log.streamVersion(botId)

  const recordedBy = { ChangeConfig: "BotConfigChanged", Stop: "BotStopped", Remove: "BotRemoved", RotateToken: "BotTokenRotated" } as const
  /** Runs `command` on this node's actor when it runs the bot here; null otherwise. */
  const here = (botId: string, command: Exclude<ActorCommand, { _tag: "Status" }>) =>
    Effect.map(applyOnNode(o.node(), o.log, botId, command, recordedBy[command._tag], o.config.nodeId), (a): Changed | null => (a === null ? null : { botId, events: a.events, version: a.version }))

  const lifecycle = (name: "stop" | "remove", botId: string, reason: string, actor: string) =>
    Effect.gen(function* () {
      const local = yield* here(botId, { _tag: name === "stop" ? "Stop" : "Remove", reason })
      const changed: Changed =
        local ??
        (yield* applyOrAskNode({
          log: o.log,
          botId,
          actor,
          input: (state, owner) =>
            name === "stop"
              ? { _tag: "Stop", nodeId: state.node?.nodeId ?? owner, reason, at: new Date().toISOString() }
              : { _tag: "Remove", reason, at: new Date().toISOString() },
          control: control(),
          request: { _tag: name === "stop" ? "Stop" : "Remove", botId, reason }
        }))
      yield* unlistBot(o.sql, botId)
      // this node supervises it no more either (a passivated bot would wake on its next update)
      const node = o.node()
      if (node !== null) yield* node.supervisor.stopBot(botId)
      const c = control()
      if (c !== null) yield* Effect.ignore(sendControl({ ...c, awaitReply: false }, { _tag: name === "stop" ? "Stop" : "Remove", botId, reason }))
      return changed
    })

  const announce = (botId: string) =>
    Effect.gen(function* () {
      const node = o.node()
      if (node !== null) yield* node.startBot(botId)
      const c = control()
      if (c !== null) yield* Effect.ignore(sendControl({ ...c, awaitReply: false }, { _tag: "StartBot", botId }))
    })

  return {
    add: (bot) =>
      Effect.gen(function* () {
        if (bot.botId.startsWith("_")) return yield* new ApiError({ status: 400, code: "invalid_request", detail: 'bot ids starting with "_" are reserved' })
        const version = yield* versionOf(bot.botId)
        if (version > 0) return yield* new ApiError({ status: 409, code: "bot_exists", detail: `bot ${bot.botId} already exists` })
        const me = yield* checkAndSealToken({ botId: bot.botId, token: bot.token, vault, apiRoot: o.config.telegramApiRoot })
        const registered = yield* registerBot({
          log: o.log,
          vault,
          directory: makeFleetDirectory(o.sql),
          nodeId: cliLeaseOwner(),
          bot: { botId: bot.botId, ownerId: bot.ownerId, name: bot.name ?? me.username, kind: bot.kind, mode: bot.mode, token: bot.token, config: {} }
        })
        if (!registered) return yield* new ApiError({ status: 409, code: "bot_exists", detail: `bot ${bot.botId} already exists` })
        yield* announce(bot.botId)
        return { botId: bot.botId, username: me.username, telegramId: me.telegramId }
      }),
    configure: (botId, patch, actor) =>
      Effect.gen(function* () {
        // checked before anything is sent or recorded: a refused configuration changes nothing
        yield* checkPatch({ log: o.log, botId, patch, botModules: o.config.botModules })
        const local = yield* here(botId, { _tag: "ChangeConfig", patch })
        if (local !== null) return local
        return yield* applyOrAskNode({
          log: o.log,
          botId,
          actor,
          input: () => ({ _tag: "ChangeConfig", patch, at: new Date().toISOString() }),
          control: control(),
          request: { _tag: "Configure", botId, patch }
        })
      }),
    start: (botId) =>
      Effect.gen(function* () {
        const { state, version } = yield* foldBot(o.log, botId)
        if (version === 0) return yield* new UnknownBot({ botId })
        if (state.status === "removed") return yield* new ApiError({ status: 409, code: "refused", detail: `bot ${botId} is removed: it cannot be started again` })
        yield* makeFleetDirectory(o.sql).add(botId)
        yield* announce(botId)
        return { botId, listed: true as const }
      }),
    stop: (botId, reason, actor) => lifecycle("stop", botId, reason, actor),
    remove: (botId, reason, actor) => lifecycle("remove", botId, reason, actor),
    forgetUser: (botId, userIdText, actor, onProgress) => {
      // production mode: the user's dead letters in the Redis inbox go too (embedded mode's are rows, purged with the rest)
      const inbox = Option.isSome(o.config.redisUrl)
        ? makeRedisInbox({ url: Redacted.value(o.config.redisUrl.value), prefix: o.config.redisPrefix, partitions: o.config.partitions })
        : undefined
      return forgetUser(
        {
          ...(inbox ? { inbox } : {}),
          log: o.log,
          sql: o.sql,
          keys: privacy.keys,
          cache: privacy.cache,
          ...(o.forgetSettle !== undefined ? { settle: o.forgetSettle } : {}),
          ...(onProgress ? { onProgress } : {}),
          announce: (bot, userId) =>
            Effect.gen(function* () {
              const node = o.node()
              if (node !== null) yield* restartIfRunning(node, bot)
              const c = control()
              if (c !== null) yield* Effect.ignore(sendControl({ ...c, awaitReply: false }, { _tag: "ForgetUser", botId: bot, userId }))
            })
        },
        { botId, userIdText, actor }
      ).pipe(Effect.ensuring(inbox ? inbox.close : Effect.void))
    },
    rotateToken: (botId, token, actor) =>
      Effect.gen(function* () {
        const { state, version } = yield* foldBot(o.log, botId)
        if (version === 0) return yield* new UnknownBot({ botId })
        if (state.status === "removed") return yield* new ApiError({ status: 409, code: "refused", detail: `bot ${botId} is removed` })
        const current = state.tokenCiphertext === null ? null : yield* Effect.either(vault.open(botId, state.tokenCiphertext))
        const expected = current?._tag === "Right" ? Number(telegramIdOfToken(current.right)) : undefined
        const checked = yield* checkAndSealToken({ botId, token, vault, apiRoot: o.config.telegramApiRoot, ...(expected ? { expectedTelegramId: expected } : {}) })
        const local = yield* here(botId, { _tag: "RotateToken", tokenCiphertext: checked.tokenCiphertext })
        if (local !== null) {
          // its poller or webhook still hold the old token: run it again with the new one
          const node = o.node()!
          yield* node.supervisor.stopBot(botId)
          yield* node.startBot(botId)
          return local
        }
        return yield* applyOrAskNode({
          log: o.log,
          botId,
          actor,
          input: () => ({ _tag: "RotateToken", tokenCiphertext: checked.tokenCiphertext, at: new Date().toISOString() }),
          control: control(),
          request: { _tag: "RotateToken", botId, tokenCiphertext: checked.tokenCiphertext }
        })
      })
  }
}
