import { Effect } from "effect"
import { ArchiveUnavailable } from "../actors/eventArchive.js"
import type { SqlClient } from "../db/sql.js"

/**
 * What the trimmer asks the archive database (sql/0070_hot_log_trimming.sql) before it removes
 * anything: how far each bot is archived without a gap, whether the very events it is about to
 * remove are there, and where it got to last time.
 */
export interface TrimLedger {
  /** Per bot: versions 1..watermark are all in events_archive (bots without any archived: absent). */
  readonly watermarks: (botIds: ReadonlyArray<string>) => Effect.Effect<ReadonlyMap<string, number>, ArchiveUnavailable>
  /** How many of these events (bot, version, event id) the archive holds. */
  readonly countArchived: (
    events: ReadonlyArray<{ readonly botId: string; readonly version: number; readonly eventId: string }>
  ) => Effect.Effect<number, ArchiveUnavailable>
  /** Per bot: how many versions in [from, below) the archive holds. */
  readonly countRanges: (
    ranges: ReadonlyArray<{ readonly botId: string; readonly from: number; readonly below: number }>
  ) => Effect.Effect<ReadonlyMap<string, number>, ArchiveUnavailable>
  /** The last partition-log position handled by the trimmer of the partition (null: none yet). */
  readonly cursor: (partition: number) => Effect.Effect<string | null, ArchiveUnavailable>
  readonly saveCursor: (partition: number, position: string) => Effect.Effect<void, ArchiveUnavailable>
}

/** The ledger over the Postgres database holding events_archive (the server, or PGlite when embedded). */
export const makePostgresTrimLedger = (sql: SqlClient): TrimLedger => {
  const call = <A>(operation: string, f: () => Promise<A>) =>
    Effect.tryPromise({ try: f, catch: (cause) => new ArchiveUnavailable({ operation, cause }) })
  return {
    watermarks: (botIds) =>
      botIds.length === 0
        ? Effect.succeed(new Map())
        : call("watermarks", async () => {
            const { rows } = await sql.query<{ bot_id: string; version: number }>(
              "SELECT bot_id, version FROM archive_watermarks WHERE bot_id = ANY($1::text[])",
              [botIds]
            )
            return new Map(rows.map((r) => [r.bot_id, Number(r.version)]))
          }),
    countArchived: (events) =>
      events.length === 0
        ? Effect.succeed(0)
        : call("countArchived", async () => {
            const { rows } = await sql.query<{ n: string }>(
              `SELECT count(*)::text AS n FROM unnest($1::text[], $2::int[], $3::text[]) AS u(bot_id, version, event_id)
               JOIN events_archive a ON a.bot_id = u.bot_id AND a.version = u.version AND a.event_id = u.event_id`,
              [events.map((e) => e.botId), events.map((e) => e.version), events.map((e) => e.eventId)]
            )
            return Number(rows[0]!.n)
          }),
    countRanges: (ranges) =>
      ranges.length === 0
        ? Effect.succeed(new Map())
        : call("countRanges", async () => {
            const { rows } = await sql.query<{ bot_id: string; n: string }>(
              `SELECT u.bot_id, (SELECT count(*) FROM events_archive a WHERE a.bot_id = u.bot_id AND a.version >= u.v_from AND a.version < u.v_below)::text AS n
               FROM unnest($1::text[], $2::int[], $3::int[]) AS u(bot_id, v_from, v_below)`,
              [ranges.map((r) => r.botId), ranges.map((r) => r.from), ranges.map((r) => r.below)]
            )
            return new Map(rows.map((r) => [r.bot_id, Number(r.n)]))
          }),
    cursor: (partition) =>
      call("cursor", async () => {
        const { rows } = await sql.query<{ position: string }>("SELECT position FROM trim_cursors WHERE log_partition = $1", [partition])
        return rows[0]?.position ?? null
      }),
    saveCursor: (partition, position) =>
      call("saveCursor", async () => {
        await sql.query(
          `INSERT INTO trim_cursors (log_partition, position) VALUES ($1, $2)
           ON CONFLICT (log_partition) DO UPDATE SET position = excluded.position, updated_at = now()`,
          [partition, position]
        )
      })
  }
}
