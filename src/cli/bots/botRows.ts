import { Effect } from "effect"
import { evolve, initialState } from "../../actors/decider/state.js"
import type { BotState } from "../../actors/decider/state.js"
import type { InboxService } from "../../actors/inbox.js"
import type { SqlClient } from "../../db/sql.js"
import type { EventLogService } from "../../events/eventLog.js"
import { DirectoryUnavailable } from "../../runtime/fleetDirectory.js"
import { readWholeStream } from "../streamReader.js"
import { aiStatusOf } from "../../ai/aiStatus.pure.js"
import type { AiStatus } from "../../ai/aiStatus.pure.js"

/*
 * What `bots list` and `status` show of a bot: its state folded from its own stream (the source of
 * truth, whichever node runs it), its lease (which node runs it now) and how many inbox entries
 * wait behind its cursor. No token, sealed or not, is ever part of a row.
 */

/** Inbox entries counted per bot, at most (the lag shown is then ">= cap"). */
export const INBOX_LAG_CAP = 1_000

export interface BotRow {
  readonly botId: string
  /** The recorded status (registered, running, stopped, failed, removed; unregistered: no events). */
  readonly state: string
  readonly version: number
  readonly name: string | null
  readonly mode: string | null
  /** Node holding the bot's lease now (null: no node runs it). */
  readonly node: string | null
  /** Crashes recorded (each one a supervisor restart). */
  readonly crashes: number
  readonly lastError: string | null
  /** Inbox entries not handled yet, counted up to INBOX_LAG_CAP. */
  readonly inboxLag: number
  readonly inListedFleet: boolean
  /** AI replies, today's tokens and fallbacks by reason; null when the bot never used a model. */
  readonly ai: AiStatus | null
}

/** A bot's state folded from its whole stream, with its version. */
export const foldBot = (log: EventLogService, botId: string) =>
  Effect.map(readWholeStream(log, botId), (events) => {
    let state: BotState = initialState
    for (const e of events) state = evolve(state, e.data)
    return { state, version: events[events.length - 1]?.version ?? 0 }
  })

/** The fleet directory's bots (sql/0030: fleet_bots). */
export const listedBots = (sql: SqlClient) =>
  Effect.tryPromise({
    try: async () => (await sql.query<{ bot_id: string }>("SELECT bot_id FROM fleet_bots ORDER BY bot_id")).rows.map((r) => r.bot_id),
    catch: (cause) => new DirectoryUnavailable({ operation: "list", cause })
  })

/** Takes a bot out of the fleet directory: nodes no longer start it (they start the listed bots at start-up). */
export const unlistBot = (sql: SqlClient, botId: string) =>
  Effect.tryPromise({
    try: () => sql.query("DELETE FROM fleet_bots WHERE bot_id = $1", [botId]),
    catch: (cause) => new DirectoryUnavailable({ operation: "remove", cause })
  }).pipe(Effect.asVoid)

export const botRow = (o: { readonly log: EventLogService; readonly inbox: InboxService; readonly botId: string; readonly listed: boolean }) =>
  Effect.gen(function* () {
    const { state, version } = yield* foldBot(o.log, o.botId)
    const lease = yield* o.log.readLease(o.botId)
    // an unreachable inbox shows as -1 ("?") rather than hiding the rest of the row
    const waiting = yield* Effect.either(o.inbox.lag(o.botId, state.inboxCursor, INBOX_LAG_CAP))
    const row: BotRow = {
      botId: o.botId,
      state: state.status,
      version,
      name: state.name,
      mode: state.mode,
      node: lease !== null && lease.expiresAt > Date.now() ? lease.nodeId : null,
      crashes: state.crashes,
      lastError: state.lastError,
      inboxLag: waiting._tag === "Right" ? waiting.right : -1,
      inListedFleet: o.listed,
      ai: aiStatusOf((k) => state.entries.read(k), new Date().toISOString().slice(0, 10))
    }
    return row
  })

/** Rows of every listed bot (sorted by id), or of the `only` bots. */
export const botRows = (o: { readonly log: EventLogService; readonly inbox: InboxService; readonly sql: SqlClient; readonly only?: ReadonlyArray<string> }) =>
  Effect.gen(function* () {
    const listed = new Set(yield* listedBots(o.sql))
    const ids = o.only ?? [...listed]
    return yield* Effect.forEach(ids, (botId) => botRow({ log: o.log, inbox: o.inbox, botId, listed: listed.has(botId) }), { concurrency: 8 })
  })
