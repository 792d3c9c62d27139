import { Data } from "effect"
import { inRole } from "../db/roles.js"
import type { SqlClient } from "../db/sql.js"
import { MAX_RECIPIENTS } from "../actors/decider/broadcastMessage.js"
import { segmentSql } from "./segment.pure.js"

/**
 * Broadcasts in Postgres (sql/0130_broadcasts.sql): creating one freezes its recipients from the
 * owner's view of `bot_users` (row-level security as the API role: an owner's segment can only
 * ever hold that owner's users); pausing, resuming and cancelling change its state, which the
 * runner reads before every batch it puts into the bot's inbox.
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

/** A broadcast command that cannot be done: no such broadcast, or not in a state that allows it. */
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

/**
 * Creates a broadcast of `text` to the bot's users in `segment`, sent from `notBefore` on. Users
 * who blocked the bot are left out and counted. Throws SegmentInvalid (nothing written) for a
 * segment that does not parse; refuses a broadcast with no recipient.
 */
export const createBroadcast = async (
  sql: SqlClient,
  o: { readonly botId: string; readonly ownerId: string; readonly text: string; readonly segment: string; readonly notBefore: Date }
): Promise<BroadcastRow> => {
  const seg = segmentSql(o.segment, 2)
  const users = await inRole(sql, { role: "api", ownerId: o.ownerId }, (tx) =>
    tx.query<{ user_id: string; blocked: boolean }>(
      `SELECT user_id, blocked_at IS NOT NULL AS blocked FROM bot_users WHERE bot_id = $1 AND (${seg.where}) ORDER BY user_id`,
      [o.botId, ...seg.params]
    )
  )
  const recipients = users.rows.filter((u) => !u.blocked).map((u) => Number(u.user_id))
  const skipped = users.rows.length - recipients.length
  if (recipients.length === 0) {
    throw new BroadcastRefused({ broadcastId: null, reason: `the segment "${o.segment}" holds no user of bot ${o.botId} who can be messaged (${skipped} blocked the bot)` })
  }
  if (recipients.length > MAX_RECIPIENTS) throw new BroadcastRefused({ broadcastId: null, reason: `more than ${MAX_RECIPIENTS} recipients` })
  return sql.transaction(async (tx) => {
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
  })
}

export const listBroadcasts = async (sql: SqlClient, botId?: string): Promise<ReadonlyArray<BroadcastRow>> =>
  (await sql.query(`SELECT * FROM broadcasts ${botId !== undefined ? "WHERE bot_id = $1" : ""} ORDER BY broadcast_id`, botId !== undefined ? [botId] : [])).rows.map(rowOf)

const TRANSITIONS: Readonly<Record<"pause" | "resume" | "cancel", { readonly from: ReadonlyArray<BroadcastState>; readonly to: BroadcastState }>> = {
  pause: { from: ["running"], to: "paused" },
  resume: { from: ["paused"], to: "running" },
  cancel: { from: ["running", "paused"], to: "cancelled" }
}

/** Pauses, resumes or cancels a broadcast; refuses (changing nothing) from a state that does not allow it. */
export const controlBroadcast = async (sql: SqlClient, broadcastId: number, action: "pause" | "resume" | "cancel"): Promise<BroadcastRow> => {
  const t = TRANSITIONS[action]
  const { rows } = await sql.query("UPDATE broadcasts SET state = $2, updated_at = now() WHERE broadcast_id = $1 AND state = ANY($3) RETURNING *", [broadcastId, t.to, t.from])
  if (rows[0]) return rowOf(rows[0])
  const now = await sql.query<{ state: string }>("SELECT state FROM broadcasts WHERE broadcast_id = $1", [broadcastId])
  throw new BroadcastRefused({ broadcastId, reason: now.rows[0] ? `it is ${now.rows[0].state}, so it cannot ${action}` : "no such broadcast" })
}
