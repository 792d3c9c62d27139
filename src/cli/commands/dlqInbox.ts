import { Data, Effect, Option, Redacted } from "effect"
import type { Scope } from "effect"
import type { InboxService, InboxUnavailable } from "../../actors/inbox.js"
import { makeRedisInbox } from "../../actors/redisInbox.js"
import type { BotfleetConfig } from "../../config.js"
import type { SqlClient } from "../../db/sql.js"
import type { LogUnavailable } from "../../events/errors.js"
import type { EventLogService } from "../../events/eventLog.js"
import { makeRedisEventLog } from "../../events/redisEventLog.js"
import { openStores } from "../../runtime/stores.js"
import { resolveBotRef } from "../bots/botRef.js"
import { UnknownBot } from "../bots/lifecycle.js"
import { printJson, printTable } from "../io.js"
import type { CliIo } from "../io.js"
import { UsageError } from "../runtime.js"

/*
 * Inbox dead letters: updates a bot's handler threw on (the actor kept them, with the reason, and
 * recorded UpdateFailed). Retrying one puts its update back at the end of the bot's inbox, so the
 * running bot (with its fixed code) handles it; the port does the move atomically, so retrying
 * the same entry twice enqueues it once. The decider handles it because UpdateFailed does not mark
 * an update_id as seen (src/actors/decider/state.ts); once handled, any other copy is a duplicate.
 */

export class InboxDeadLetterNotFound extends Data.TaggedError("InboxDeadLetterNotFound")<{ readonly botId: string; readonly entryId: string }> {
  override get message() {
    return `bot ${this.botId} has no inbox dead letter ${this.entryId} (already retried?): list them with botfleet dlq list --bot ${this.botId}`
  }
}

/** One retried dead letter: the entry it was, and the inbox entry it is now. */
export interface InboxRetried {
  readonly botId: string
  readonly entryId: string
  readonly updateId: number | null
  readonly requeuedAs: string
}

const ENTRY_ID = /^\d+-\d+$/

/** Checks an entry id's shape (`<number>-<number>`, as `dlq list --bot` prints it). */
export const checkEntryId = (entryId: string): Effect.Effect<string, UsageError> =>
  ENTRY_ID.test(entryId) ? Effect.succeed(entryId) : Effect.fail(new UsageError({ detail: `inbox entry id ${JSON.stringify(entryId)}: expected <number>-<number>, as botfleet dlq list --bot shows it` }))

/**
 * The stores the inbox dead letters live in: Redis when REDIS_URL is set (no Postgres needed, so
 * a bot is named there by its id or a demo bot's name), else the embedded database (PGlite under
 * DATA_DIR; stop the fleet first).
 */
export const openInboxStores = (config: BotfleetConfig): Effect.Effect<{ log: EventLogService; inbox: InboxService; sql: SqlClient | null }, unknown, Scope.Scope> =>
  Effect.gen(function* () {
    if (Option.isNone(config.redisUrl)) {
      const s = yield* openStores(config)
      return { log: s.log, inbox: s.inbox, sql: s.sql }
    }
    const url = Redacted.value(config.redisUrl.value)
    const log = yield* Effect.acquireRelease(makeRedisEventLog({ url, prefix: config.redisPrefix, partitions: config.partitions }), (l) => l.close)
    const inbox = yield* Effect.acquireRelease(
      Effect.sync(() => makeRedisInbox({ url, prefix: config.redisPrefix, partitions: config.partitions })),
      (i) => i.close
    )
    return { log, inbox, sql: null }
  })

const knownBot = (log: EventLogService, botId: string) =>
  Effect.flatMap(log.streamVersion(botId), (v) => (v === 0 ? Effect.fail(new UnknownBot({ botId })) : Effect.void))

const updateIdOf = (update: unknown): number | null => {
  const id = (update as { update_id?: unknown } | null)?.update_id
  return typeof id === "number" ? id : null
}

/**
 * Retries one dead letter of the bot (`entryId`) or all of them (null). A named entry that is not
 * (or no longer) dead-lettered fails with InboxDeadLetterNotFound and changes nothing.
 */
export const retryInboxDeadLetters = (o: {
  readonly log: EventLogService
  readonly inbox: InboxService
  readonly botId: string
  readonly entryId: string | null
}): Effect.Effect<ReadonlyArray<InboxRetried>, UnknownBot | InboxDeadLetterNotFound | InboxUnavailable | LogUnavailable> =>
  Effect.gen(function* () {
    yield* knownBot(o.log, o.botId)
    const dead = yield* o.inbox.readDeadLetters(o.botId)
    const updateIds = new Map(dead.map((d) => [d.entryId, updateIdOf(d.update)]))
    if (o.entryId !== null && !updateIds.has(o.entryId)) return yield* new InboxDeadLetterNotFound({ botId: o.botId, entryId: o.entryId })
    const chosen = o.entryId === null ? [...updateIds.keys()] : [o.entryId]
    const done: Array<InboxRetried> = []
    for (const entryId of chosen) {
      const requeuedAs = yield* o.inbox.retryDeadLetter(o.botId, entryId)
      // null: another retry took it between the read and now; it is enqueued once, by that one
      if (requeuedAs === null) {
        if (o.entryId !== null) return yield* new InboxDeadLetterNotFound({ botId: o.botId, entryId })
        continue
      }
      done.push({ botId: o.botId, entryId, updateId: updateIds.get(entryId) ?? null, requeuedAs })
    }
    return done
  })

/** `botfleet dlq list --bot <bot>`: the bot's inbox dead letters, oldest first. */
export const listInboxDeadLetters = (io: CliIo, stores: { log: EventLogService; inbox: InboxService; sql: SqlClient | null }, ref: string, json: boolean) =>
  Effect.gen(function* () {
    const botId = yield* resolveBotRef(stores, ref)
    yield* knownBot(stores.log, botId)
    const dead = yield* stores.inbox.readDeadLetters(botId)
    if (json) return printJson(io, dead.map((d) => ({ botId, ...d, updateId: updateIdOf(d.update) })))
    if (dead.length === 0) return io.stdout(`no inbox dead letters for bot ${botId}`)
    printTable(io, dead.map((d) => ({ entry: d.entryId, update_id: updateIdOf(d.update) ?? "", at: d.at, reason: d.reason.slice(0, 80) })))
  })

/** Prints what `dlq retry --bot` did. */
export const printInboxRetried = (io: CliIo, botId: string, done: ReadonlyArray<InboxRetried>, json: boolean) => {
  if (json) return printJson(io, { retried: done })
  if (done.length === 0) return io.stdout(`no inbox dead letters for bot ${botId}`)
  printTable(io, done.map((d) => ({ entry: d.entryId, update_id: d.updateId ?? "", "requeued as": d.requeuedAs })))
  io.stdout(`re-enqueued ${done.length} inbox dead letter${done.length === 1 ? "" : "s"} of bot ${botId}: the bot handles ${done.length === 1 ? "it" : "them"} again`)
}
