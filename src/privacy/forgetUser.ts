import { Data, Duration, Effect } from "effect"
import { inRole } from "../db/roles.js"
import type { SqlClient } from "../db/sql.js"
import type { AppendError, InvalidEvent, LogUnavailable } from "../events/errors.js"
import type { EventLogService } from "../events/eventLog.js"
import { FLEET_STREAM, isReservedId } from "../projections/mapping/fleet.js"
import type { FleetStreamBusy } from "../runtime/fleetEvents.js"
import { appendFleetEvent } from "../runtime/fleetEvents.js"
import type { KeyCache } from "./keyCache.js"
import { announceForget } from "./keyCache.js"
import type { InboxService, InboxUnavailable } from "../actors/inbox.js"
import { hasClearPersonal, updateSender } from "./personalFields.pure.js"
import type { UserKeys } from "./userKeys.js"
import { KeyStoreUnavailable } from "./userKeys.js"

/*
 * `botfleet users forget <bot> <user>` and `DELETE /v1/bots/:bot/users/:user` (docs/privacy.md):
 * crypto-shredding of one user of one bot. The key is destroyed first (from then on every sealed
 * value of the user, in the log, the archive and every backup, reads `[erased]`), then every
 * process is told to drop the key from its cache, then the projections' rows of the user are
 * deleted, twice: once at once, and once more after the key caches' TTL, so a projector that was
 * still opening the user's events with a cached key cannot leave rows behind. Last, the erasure
 * is recorded as a fleet event (UserForgotten), holding no personal data.
 */

/** The request names no bot, or no user that bot has met; nothing was changed. */
export class ForgetRefused extends Data.TaggedError("ForgetRefused")<{
  readonly botId: string
  readonly userId: string
  readonly reason: "UnknownBot" | "UnknownUser" | "BadUserId"
}> {
  override get message() {
    switch (this.reason) {
      case "UnknownBot":
        return `bot ${this.botId} not found`
      case "UnknownUser":
        return `bot ${this.botId} has no user ${this.userId} (no key and no projected row of them)`
      case "BadUserId":
        return `user id ${JSON.stringify(this.userId)} is not a Telegram user id (a positive integer)`
    }
  }
}

/** The rows deleted from each projection table (both passes together). */
export type PurgedRows = Readonly<Record<string, number>>

export interface ForgetReport {
  readonly botId: string
  readonly userId: number
  /** The user had been forgotten before: nothing new was destroyed (the rows were purged again, the event not recorded twice). */
  readonly alreadyForgotten: boolean
  readonly purged: PurgedRows
  /**
   * Events of the user in the bot's log that still hold personal fields in clear: written before
   * sealing existed (or by a writer that does not seal). Out of reach of crypto-shredding; they stay readable.
   */
  readonly clearTextEvents: number
  /** The fleet stream's version after the UserForgotten event (null: recorded by an earlier run). */
  readonly recordedAt: number | null
}

export interface ForgetUserDeps {
  /** The log with sealing (sealingLog.ts), streams read through to the archive. */
  readonly log: EventLogService
  readonly sql: SqlClient
  readonly keys: UserKeys
  readonly cache: KeyCache
  /** Tells the other processes (the nodes: the control channel) that the user was forgotten; this process's threads are told by BroadcastChannel. */
  readonly announce?: (botId: string, userId: number) => Effect.Effect<void>
  /**
   * The bots' inboxes (production: Redis): the user's dead letters there are deleted too. They
   * hold the raw update in clear, unsealed (the inbox is before the log's sealing boundary).
   */
  readonly inbox?: InboxService
  /** How long to wait before the second purge (default: the key cache's TTL plus a second). */
  readonly settle?: Duration.DurationInput
  /** Progress lines (each step, each page of the stream read). */
  readonly onProgress?: (line: string) => void
}

const keyStore = (operation: string) => (cause: unknown) => (cause instanceof KeyStoreUnavailable ? cause : new KeyStoreUnavailable({ operation, cause }))

/** The tables of the projections (as the projector role) and the actors' keyed state, and how each names a user. */
const PROJECTION_PURGES: ReadonlyArray<readonly [table: string, where: string]> = [
  ["bot_users", "user_id = $2"],
  ["messages", "(user_id = $2 OR chat_id = $2)"],
  ["chats", "chat_id = $2"],
  // a session key of a custom or legacy layout the table has no user for (`<chat_instance>:<from>`)
  ["bot_sessions", "(user_id = $2 OR chat_id = $2 OR session_key LIKE '%:' || $2::text)"],
  // whose a record is, as personalFields.pure.ts's legacySubject says (the records sealed with the user's key)
  [
    "imported_records",
    `(CASE
        WHEN collection = 'sessions' THEN record_key LIKE '%:' || $2::text OR record_key LIKE $2::text || ':-%'
        WHEN collection IN ('users', 'data.users') THEN COALESCE(record ->> 'id', record_key) = $2::text
        WHEN collection = 'chats' THEN record ->> 'id' = $2::text
        ELSE COALESCE(record ->> 'from_id', record ->> 'user_id', record ->> 'chat_id') = $2::text
      END)`
  ]
]

/** Deletes the user's projection rows and keyed actor state; the counts per table. */
export const purgeUserRows = async (sql: SqlClient, botId: string, userId: number): Promise<Record<string, number>> => {
  const counts: Record<string, number> = {}
  await inRole(sql, { role: "projector" }, async (tx) => {
    for (const [table, where] of PROJECTION_PURGES) {
      const r = await tx.query(`DELETE FROM ${table} WHERE bot_id = $1 AND ${where}`, [botId, userId])
      counts[table] = r.rowCount
    }
  })
  // the actors' keyed state (caches of the fold, sql/0090): the user, their adaptation, their AI
  // memory and usage, their sessions; the next activation folds them again, [erased]
  const u = String(userId)
  const r = await sql.query("DELETE FROM actor_entries WHERE bot_id = $1 AND (key = ANY($2::text[]) OR key LIKE $3)", [
    botId,
    [`u:${u}`, `p:${u}`, `c:${u}`, `ai:u:${u}`],
    `s:${u}:%`
  ])
  counts["actor_entries"] = r.rowCount
  // updates of the user a handler threw on, kept for `dlq retry --bot` (embedded mode's inbox;
  // the Redis inbox's are deleted through the inbox port: purgeDeadLetters)
  const dl = await sql.query(
    `DELETE FROM inbox_dead_letters WHERE bot_id = $1 AND EXISTS (
       SELECT 1 FROM jsonb_each(update) p WHERE jsonb_typeof(p.value) = 'object' AND p.value -> 'from' ->> 'id' = $2::text)`,
    [botId, u]
  )
  counts["inbox_dead_letters"] = dl.rowCount
  return counts
}

/** Deletes the dead letters of the inbox that the user sent (every copy of each); how many. */
const purgeDeadLetters = (inbox: InboxService, botId: string, userId: number): Effect.Effect<number, InboxUnavailable> =>
  Effect.gen(function* () {
    const theirs = (yield* inbox.readDeadLetters(botId)).filter((d) => updateSender(d.update) === userId)
    let n = 0
    for (const entryId of new Set(theirs.map((d) => d.entryId))) n += yield* inbox.dropDeadLetter(botId, entryId)
    return n
  })

const add = (a: Record<string, number>, b: Record<string, number>) => {
  for (const [k, v] of Object.entries(b)) a[k] = (a[k] ?? 0) + v
}

/** Events of `userId` in the bot's stream with a personal field in clear, read page by page. */
const countClearText = (log: EventLogService, botId: string, userId: number, progress: (line: string) => void) =>
  Effect.gen(function* () {
    const top = yield* log.streamVersion(botId)
    let clear = 0
    for (let from = 1; from <= top; from += 1000) {
      const page = yield* log.readStream(botId, { from, limit: 1000 })
      for (const e of page) if (hasClearPersonal(e.data, userId)) clear++
      if (top > 1000) progress(`read ${Math.min(top, from + 999)} of ${top} events`)
      if (page.length === 0) break
    }
    return clear
  })

/** Whether the fleet stream already records this erasure (a second run records nothing). */
const alreadyRecorded = (log: EventLogService, botId: string, userId: number) =>
  log.readStream(FLEET_STREAM).pipe(Effect.map((events) => events.some((e) => e.data._tag === "UserForgotten" && e.data.botId === botId && e.data.userId === userId)))

/** Forgets user `userIdText` of bot `botId` (see the top of this file); idempotent. */
export const forgetUser = (
  d: ForgetUserDeps,
  o: { readonly botId: string; readonly userIdText: string; readonly actor: string }
): Effect.Effect<ForgetReport, ForgetRefused | KeyStoreUnavailable | LogUnavailable | InvalidEvent | AppendError | FleetStreamBusy | InboxUnavailable> =>
  Effect.gen(function* () {
    const progress = d.onProgress ?? (() => undefined)
    const { botId } = o
    if (!/^\d{1,15}$/.test(o.userIdText) || Number(o.userIdText) <= 0) return yield* new ForgetRefused({ botId, userId: o.userIdText, reason: "BadUserId" })
    const userId = Number(o.userIdText)
    if (isReservedId(botId) || (yield* d.log.streamVersion(botId)) === 0) return yield* new ForgetRefused({ botId, userId: o.userIdText, reason: "UnknownBot" })
    const known = yield* Effect.tryPromise({
      try: async () => {
        const k = await d.keys.keyState(botId, userId, false)
        if (k._tag !== "None") return true
        const { rows } = await inRole(d.sql, { role: "projector" }, (tx) => tx.query("SELECT 1 FROM bot_users WHERE bot_id = $1 AND user_id = $2", [botId, userId]))
        return rows.length > 0
      },
      catch: keyStore("lookup")
    })
    if (!known) return yield* new ForgetRefused({ botId, userId: o.userIdText, reason: "UnknownUser" })

    const destroyed = yield* Effect.tryPromise({ try: () => d.keys.forget(botId, userId, o.actor), catch: keyStore("forget") })
    progress(destroyed ? "key destroyed" : "key already destroyed (the user was forgotten before)")
    d.cache.invalidate(botId, userId)
    announceForget(botId, userId)
    if (d.announce) yield* d.announce(botId, userId)

    const purged: Record<string, number> = {}
    const purgeAll = Effect.gen(function* () {
      add(purged, yield* Effect.tryPromise({ try: () => purgeUserRows(d.sql, botId, userId), catch: keyStore("purge") }))
      if (d.inbox) add(purged, { inbox_dead_letters: yield* purgeDeadLetters(d.inbox, botId, userId) })
    })
    yield* purgeAll
    const settle = Duration.decode(d.settle ?? Duration.millis(d.cache.ttlMs + 1000))
    progress(`projections purged; purging again in ${Duration.toMillis(settle) / 1000} s, once every node's key cache has let the key go`)
    yield* Effect.sleep(settle)
    yield* purgeAll
    progress("projections purged again; counting the user's events still in clear")

    const clearTextEvents = yield* countClearText(d.log, botId, userId, progress)
    const recordedAt = (yield* alreadyRecorded(d.log, botId, userId))
      ? null
      : yield* appendFleetEvent(d.log, { _tag: "UserForgotten", botId, userId, clearTextEvents }, o.actor)
    return { botId, userId, alreadyForgotten: !destroyed, purged, clearTextEvents, recordedAt }
  })
