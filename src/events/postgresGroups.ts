import type { SqlClient, SqlTx } from "../db/sql.js"
import type { DeadLetter, Delivery, GroupProgress, RawFields, ReclaimResult } from "./eventLog.js"
import { lastSettled, readAfter } from "./postgresPartitionLog.js"
import { formatPosition, parsePosition, ZERO_POSITION } from "./postgresPosition.js"
import type { PgPosition } from "./postgresPosition.js"
import { EVENT_COLUMNS, toDelivery } from "./postgresRows.js"
import type { EventRow } from "./postgresRows.js"

/** Advisory lock class serialising the readers of one group on one partition ("bg"). */
const GROUP_LOCK_CLASS = 0x6267

/** A 32-bit key for (group, partition); collisions only make two groups wait for each other. */
const groupLockKey = (group: string, partition: number): number => {
  let h = 0x811c9dc5 ^ partition
  for (let i = 0; i < group.length; i++) {
    h ^= group.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h | 0
}

/** The group does not exist on the partition (Redis answers NOGROUP). */
export class NoSuchGroup extends Error {
  constructor(readonly group: string, readonly partition: number) {
    super(`no consumer group ${group} on partition ${partition}: call ensureGroup first`)
  }
}

const lockGroup = (tx: SqlTx, group: string, partition: number) =>
  tx.query("SELECT pg_advisory_xact_lock($1::int, $2::int)", [GROUP_LOCK_CLASS, groupLockKey(group, partition)])

const seqsOf = (positions: ReadonlyArray<string>) => positions.map((p) => parsePosition(p).seq)

/**
 * Consumer groups over the partition logs with the semantics of Redis Streams groups (cursor,
 * pending entries, redelivery by idle time), in the tables of sql/0003_consumer_groups.sql.
 */
export const makePostgresGroups = (sql: SqlClient) => ({
  /**
   * Creates the group unless it exists. "end" starts after the last settled entry; while committed
   * entries are still held behind the horizon it answers `held` (nothing created) so the caller can
   * wait and retry, unless `force`.
   */
  ensure: async (partition: number, group: string, from: "start" | "end", force = false): Promise<{ held: boolean }> => {
    let start: PgPosition = ZERO_POSITION
    if (from === "end") {
      const r = await lastSettled(sql, partition)
      if (r.held && !force) return { held: true }
      start = r.last ?? ZERO_POSITION
    }
    await sql.query(
      `INSERT INTO consumer_groups (grp, partition, last_tx, last_position) VALUES ($1, $2, $3::text::xid8, $4)
       ON CONFLICT (grp, partition) DO NOTHING`,
      [group, partition, start.tx, start.seq]
    )
    return { held: false }
  },

  /**
   * Delivers up to `count` entries after the group's cursor to `consumer`, recording them pending
   * and advancing the cursor in the same transaction. Readers of one group and partition are
   * serialised by an advisory lock (which assigns no transaction id, so it does not lower the
   * horizon the read is cut at): two competing consumers never get the same entry.
   */
  readOnce: (partition: number, group: string, consumer: string, count: number): Promise<{ deliveries: Delivery[]; held: boolean }> =>
    sql.transaction(async (tx) => {
      await lockGroup(tx, group, partition)
      const { rows } = await tx.query<{ last_tx: string; last_position: string }>(
        "SELECT last_tx, last_position FROM consumer_groups WHERE grp = $1 AND partition = $2",
        [group, partition]
      )
      const g = rows[0]
      if (!g) throw new NoSuchGroup(group, partition)
      const read = await readAfter(tx, partition, { tx: g.last_tx, seq: g.last_position }, count)
      if (read.rows.length === 0) return { deliveries: [], held: read.held }
      const last = read.rows.at(-1)!
      await tx.query(
        `WITH p AS (
           INSERT INTO pending (grp, partition, position, tx, bot_id, consumer, delivered_at, delivery_count)
           SELECT $1, $2, u.position, u.tx::xid8, u.bot_id, $3, now(), 1
           FROM unnest($4::bigint[], $5::text[], $6::text[]) AS u(position, tx, bot_id)
         )
         UPDATE consumer_groups SET last_tx = $7::text::xid8, last_position = $8 WHERE grp = $1 AND partition = $2`,
        [group, partition, consumer, read.rows.map((r) => r.position), read.rows.map((r) => r.tx), read.rows.map((r) => r.bot_id), last.tx, last.position]
      )
      return { deliveries: read.rows.map((r) => toDelivery(r, 1)), held: read.held }
    }),

  ack: async (partition: number, group: string, positions: ReadonlyArray<string>): Promise<void> => {
    if (positions.length === 0) return
    await sql.query("DELETE FROM pending WHERE grp = $1 AND partition = $2 AND position = ANY($3::bigint[])", [group, partition, seqsOf(positions)])
  },

  /**
   * Takes over entries pending longer than `minIdleMs` (database clock), oldest first. An entry whose
   * event row was trimmed away is acked and reported, never redelivered (it would loop forever).
   * `SKIP LOCKED`: two reclaimers never take the same entry.
   */
  reclaim: (partition: number, group: string, consumer: string, minIdleMs: number, count: number): Promise<ReclaimResult> =>
    sql.transaction(async (tx) => {
      const { rows } = await tx.query<EventRow & { p_position: string; p_tx: string; delivery_count: number }>(
        `SELECT p.position AS p_position, p.tx AS p_tx, p.delivery_count, ${EVENT_COLUMNS}
         FROM pending p LEFT JOIN events e ON e.bot_id = p.bot_id AND e.position = p.position
         WHERE p.grp = $1 AND p.partition = $2 AND p.delivered_at <= now() - $3::float8 * interval '1 millisecond'
         ORDER BY p.tx, p.position
         LIMIT $4
         FOR UPDATE OF p SKIP LOCKED`,
        [group, partition, minIdleMs, count]
      )
      const alive = rows.filter((r) => r.bot_id !== null)
      const trimmed = rows.filter((r) => r.bot_id === null)
      if (rows.length > 0) {
        await tx.query(
          `WITH d AS (DELETE FROM pending WHERE grp = $1 AND partition = $2 AND position = ANY($4::bigint[]))
           UPDATE pending SET consumer = $3, delivered_at = now(), delivery_count = delivery_count + 1
           WHERE grp = $1 AND partition = $2 AND position = ANY($5::bigint[])`,
          [group, partition, consumer, trimmed.map((r) => r.p_position), alive.map((r) => r.p_position)]
        )
      }
      return {
        deliveries: alive.map((r) => toDelivery(r, r.delivery_count + 1)),
        trimmedAcked: trimmed.map((r) => formatPosition({ tx: r.p_tx, seq: r.p_position }))
      }
    }),

  pendingCount: async (partition: number, group: string): Promise<number> => {
    const { rows } = await sql.query<{ n: number }>("SELECT count(*)::int AS n FROM pending WHERE grp = $1 AND partition = $2", [group, partition])
    return rows[0]!.n
  },

  /** Each group of the partition: its cursor (null before any delivery) and its oldest pending entry. */
  progress: async (partition: number): Promise<GroupProgress[]> => {
    const { rows } = await sql.query<{ grp: string; last_tx: string; last_position: string; p_tx: string | null; p_position: string | null }>(
      `SELECT g.grp, g.last_tx::text AS last_tx, g.last_position::text AS last_position, p.tx::text AS p_tx, p.position::text AS p_position
       FROM consumer_groups g
       LEFT JOIN LATERAL (
         SELECT tx, position FROM pending WHERE grp = g.grp AND partition = g.partition ORDER BY tx, position LIMIT 1
       ) p ON true
       WHERE g.partition = $1 ORDER BY g.grp`,
      [partition]
    )
    return rows.map((r) => {
      const last = { tx: r.last_tx, seq: r.last_position }
      const none = last.tx === ZERO_POSITION.tx && last.seq === ZERO_POSITION.seq
      return {
        group: r.grp,
        lastDelivered: none ? null : formatPosition(last),
        oldestPending: r.p_tx === null || r.p_position === null ? null : formatPosition({ tx: r.p_tx, seq: r.p_position })
      }
    })
  },

  /** Records the entry with its reason and acks it, in one statement. */
  deadLetter: async (group: string, delivery: Delivery, reason: string): Promise<void> => {
    await sql.query(
      `WITH d AS (DELETE FROM pending WHERE grp = $2 AND partition = $1 AND position = $7::bigint)
       INSERT INTO dead_letters (partition, grp, position, reason, delivery_count, raw) VALUES ($1, $2, $3, $4, $5, $6::jsonb)`,
      [delivery.partition, group, delivery.position, reason, delivery.deliveryCount, JSON.stringify(delivery.raw), parsePosition(delivery.position).seq]
    )
  },

  readDeadLetters: async (partition: number): Promise<DeadLetter[]> => {
    const { rows } = await sql.query<{ id: string; grp: string; position: string; reason: string; delivery_count: number; raw: RawFields; at: string }>(
      `SELECT id, grp, position, reason, delivery_count, raw, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at
       FROM dead_letters WHERE partition = $1 ORDER BY id`,
      [partition]
    )
    return rows.map((r) => ({
      partition,
      id: r.id,
      group: r.grp,
      position: r.position,
      reason: r.reason,
      deliveryCount: r.delivery_count,
      raw: r.raw,
      at: r.at
    }))
  }
})
