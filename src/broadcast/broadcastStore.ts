import { Data } from "effect"
import { inRole } from "../db/roles.js"
import type { SqlClient, SqlTx } from "../db/sql.js"
import { MAX_RECIPIENTS } from "../actors/decider/broadcastMessage.js"
import { segmentSql } from "./segment.pure.js"

/**
 * Broadcasts in Postgres (sql/0130_broadcasts.sql, 0135): creating one freezes its recipients
 * from the owner's view of `bot_users` (row-level security as the API role: an owner's segment can
 * only ever hold that owner's users); pausing, resuming and cancelling change its state, which the
 * runner reads before every batch it puts into the bot's inbox. The `…In` functions run inside a
 * transaction the caller opened as the api role for one owner (the REST API's `asOwner`), so
 * another owner's broadcast is "not found" to them; the others open that transaction themselves
 * (the CLI, which acts for the bot's owner).
 */

export type BroadcastState = "running" | "paused" | "cancelled" | "done"

export interface BroadcastRow {
  readonly broadcastId: number
  readonly botId: string
  readonly ownerId: string
  readonly text: string
  readonly segment: string
  readonly state: BroadcastState
  readonly notBefore: string
  readonly total: number
  /** Users of the segment left out at creation because they had blocked the bot. */
  readonly skippedBlocked: number
  /** How many messages the runner has put into the bot's inbox. */
  readonly queued: number
  readonly sent: number
  readonly blocked: number
  readonly failed: number
  readonly handled: number
  /** Messages not handled yet. */
  readonly pending: number
}

/** No broadcast of that id (or none the caller's owner can see): nothing was changed. */
export class BroadcastNotFound extends Data.TaggedError("BroadcastNotFound")<{ readonly broadcastId: number }> {
  override get message() {
    return `broadcast ${this.broadcastId}: no such broadcast; nothing was changed`
  }
}

/** A broadcast command that cannot be done: no recipient, or not in a state that allows it. */
export class BroadcastRefused extends Data.TaggedError("BroadcastRefused")<{ readonly broadcastId: number | null; readonly reason: string }> {
  override get message() {
    return `${this.broadcastId === null ? "broadcast" : `broadcast ${this.broadcastId}`}: ${this.reason}; nothing was changed`
  }
}

const rowOf = (r: Record<string, unknown>): BroadcastRow => {
  const n = (k: string) => Number(r[k])
  return {
    broadcastId: n("broadcast_id"),
    botId: String(r["bot_id"]),
    ownerId: String(r["owner_id"]),
    text: String(r["text"]),
    segment: String(r["segment"]),
    state: r["state"] as BroadcastState,
    notBefore: new Date(r["not_before"] as string).toISOString(),
    total: n("total"),
    skippedBlocked: n("skipped_blocked"),
    queued: n("next_seq"),
    sent: n("sent"),
    blocked: n("blocked"),
    failed: n("failed"),
    handled: n("handled"),
    pending: n("total") - n("handled")
  }
}

export interface NewBroadcast {
  readonly botId: string
  readonly ownerId: string
  readonly text: string
  readonly segment: string
  readonly notBefore: Date
}

/**
 * Creates a broadcast of `text` to the bot's users in `segment`, sent from `notBefore` on, in the
 * caller's api-role transaction. Users who blocked the bot are left out and counted. Throws
 * SegmentInvalid (nothing written) for a segment that does not parse; refuses a broadcast with no
 * recipient.
 */
export const createBroadcastIn = async (tx: SqlTx, o: NewBroadcast): Promise<BroadcastRow> => {
  const seg = segmentSql(o.segment, 2)
  const users = await tx.query<{ user_id: string; blocked: boolean }>(
    `SELECT user_id, blocked_at IS NOT NULL AS blocked FROM bot_users WHERE bot_id = $1 AND (${seg.where}) ORDER BY user_id`,
    [o.botId, ...seg.params]
  )
  const recipients = users.rows.filter((u) => !u.blocked).map((u) => Number(u.user_id))
  const skipped = users.rows.length - recipients.length
  if (recipients.length === 0) {
    throw new BroadcastRefused({ broadcastId: null, reason: `the segment "${o.segment}" holds no user of bot ${o.botId} who can be messaged (${skipped} blocked the bot)` })
  }
  if (recipients.length > MAX_RECIPIENTS) throw new BroadcastRefused({ broadcastId: null, reason: `more than ${MAX_RECIPIENTS} recipients` })
  const { rows } = await tx.query(
    `INSERT INTO broadcasts (bot_id, owner_id, text, segment, state, not_before, total, skipped_blocked)
     VALUES ($1, $2, $3, $4, 'running', $5, $6, $7) RETURNING *`,
    [o.botId, o.ownerId, o.text, o.segment, o.notBefore.toISOString(), recipients.length, skipped]
  )
  const id = Number(rows[0]!["broadcast_id"])
  // the frozen list, in pages: one statement per 5,000 recipients
  for (let i = 0; i < recipients.length; i += 5000) {
    const page = recipients.slice(i, i + 5000)
    await tx.query("INSERT INTO broadcast_recipients (broadcast_id, seq, user_id) SELECT $1, s - 1 + $2, u FROM unnest($3::bigint[]) WITH ORDINALITY AS t(u, s)", [id, i, page])
  }
  return rowOf(rows[0]!)
}

/** createBroadcastIn in a transaction of its own, as the api role for the bot's owner. */
export const createBroadcast = (sql: SqlClient, o: NewBroadcast): Promise<BroadcastRow> =>
  inRole(sql, { role: "api", ownerId: o.ownerId }, (tx) => createBroadcastIn(tx, o))

export const listBroadcasts = async (sql: Pick<SqlClient, "query">, botId?: string): Promise<ReadonlyArray<BroadcastRow>> =>
  (await sql.query(`SELECT * FROM broadcasts ${botId !== undefined ? "WHERE bot_id = $1" : ""} ORDER BY broadcast_id`, botId !== undefined ? [botId] : [])).rows.map(rowOf)

const TRANSITIONS: Readonly<Record<"pause" | "resume" | "cancel", { readonly from: ReadonlyArray<BroadcastState>; readonly to: BroadcastState }>> = {
  pause: { from: ["running"], to: "paused" },
  resume: { from: ["paused"], to: "running" },
  cancel: { from: ["running", "paused"], to: "cancelled" }
}

/** One broadcast (in the caller's transaction); BroadcastNotFound when there is none it can see. */
export const getBroadcastIn = async (tx: Pick<SqlTx, "query">, broadcastId: number): Promise<BroadcastRow> => {
  const { rows } = await tx.query("SELECT * FROM broadcasts WHERE broadcast_id = $1", [broadcastId])
  if (rows[0] === undefined) throw new BroadcastNotFound({ broadcastId })
  return rowOf(rows[0])
}

/**
 * A page of broadcasts by id (keyset: those after `after`), newest last; one bot's when `botId`
 * is given. Runs in the caller's transaction, so the api role sees only its owner's.
 */
export const pageBroadcastsIn = async (tx: Pick<SqlTx, "query">, o: { readonly botId?: string; readonly after: number | null; readonly limit: number }): Promise<ReadonlyArray<BroadcastRow>> =>
  (
    await tx.query("SELECT * FROM broadcasts WHERE ($1::text IS NULL OR bot_id = $1) AND ($2::bigint IS NULL OR broadcast_id > $2) ORDER BY broadcast_id LIMIT $3", [
      o.botId ?? null,
      o.after,
      o.limit
    ])
  ).rows.map(rowOf)

/** Pauses, resumes or cancels a broadcast; refuses (changing nothing) from a state that does not allow it. */
export const controlBroadcastIn = async (tx: Pick<SqlTx, "query">, broadcastId: number, action: "pause" | "resume" | "cancel"): Promise<BroadcastRow> => {
  const t = TRANSITIONS[action]
  const { rows } = await tx.query("UPDATE broadcasts SET state = $2, updated_at = now() WHERE broadcast_id = $1 AND state = ANY($3) RETURNING *", [broadcastId, t.to, t.from])
  if (rows[0]) return rowOf(rows[0])
  const now = await getBroadcastIn(tx, broadcastId)
  throw new BroadcastRefused({ broadcastId, reason: `it is ${now.state}, so it cannot ${action}` })
}

/** controlBroadcastIn for the CLI, which acts for every owner. */
export const controlBroadcast = (sql: SqlClient, broadcastId: number, action: "pause" | "resume" | "cancel"): Promise<BroadcastRow> =>
  controlBroadcastIn(sql, broadcastId, action)
