import type { SqlClient, SqlTx } from "../db/sql.js"
import type { PgPosition } from "./postgresPosition.js"
import { EVENT_COLUMNS } from "./postgresRows.js"
import type { EventRow } from "./postgresRows.js"

/**
 * Reading a partition log without ever skipping an entry.
 *
 * `position` (a sequence) is taken when a row is inserted, not when it commits, so T1 may take n,
 * T2 take n+1 and commit first. A reader that saw n+1 and moved its cursor past it would never see n.
 * So the log is ordered by (tx, position) and a reader only takes rows whose tx is below the
 * snapshot's xmin (every transaction below xmin has finished, every one still running or yet to
 * come has a tx ≥ xmin): the rows it takes form a prefix of the log that can never grow in the
 * middle (on a server, xmin refined to ignore other databases: see horizonSql). Rows committed
 * but above the horizon (an older writing transaction is still open) are "held": returned later,
 * once the horizon passes them.
 */
export interface HorizonRead {
  /** The settled prefix, in log order. */
  readonly rows: ReadonlyArray<EventRow>
  /** True when committed rows after the prefix were held back by the horizon. */
  readonly held: boolean
}

const isSettled = (tx: string, horizon: string) => BigInt(tx) < BigInt(horizon)

/**
 * The horizon, as an SQL expression evaluated in the reading statement (same snapshot).
 * PGlite has one connection: the snapshot's xmin. On a server the xmin is cluster-wide, so any
 * writing transaction of ANY database would hold every reader back (in tests, other suites'
 * databases on the same server). A transaction running in another database cannot write our
 * tables, so the horizon is the lowest running xid of the snapshot that is NOT seen running in
 * another database (pg_stat_activity, read after the snapshot), or the snapshot's xmax when there
 * is none. An xid that finished between the snapshot and that check is not seen at all and so
 * still counts (its rows may be committed but invisible to this snapshot): never too high.
 */
const horizonSql = (dialect: SqlTx["dialect"]): string =>
  dialect === "pglite"
    ? "pg_snapshot_xmin(pg_current_snapshot())"
    : `coalesce(
        (SELECT x FROM pg_snapshot_xip(pg_current_snapshot()) AS x
         WHERE NOT EXISTS (
           SELECT 1 FROM pg_stat_activity a
           WHERE a.backend_xid = x::xid AND a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database()))
         ORDER BY x LIMIT 1),
        pg_snapshot_xmax(pg_current_snapshot()))`

/** Up to `limit` entries of a partition after `after`, cut at the visibility horizon. */
export const readAfter = async (
  sql: SqlClient | SqlTx,
  partition: number,
  after: PgPosition,
  /** null: no limit */
  limit: number | null
): Promise<HorizonRead> => {
  // the horizon is computed once, in the same statement (same snapshot) as the rows
  const { rows } = await sql.query<EventRow & { horizon: string }>(
    `SELECT ${EVENT_COLUMNS}, h.horizon
     FROM (SELECT ${horizonSql(sql.dialect)} AS horizon) h
     LEFT JOIN LATERAL (
       SELECT * FROM events
       WHERE partition = $1 AND (tx, position) > ($2::text::xid8, $3::bigint)
       ORDER BY tx, position
       LIMIT $4
     ) e ON true
     ORDER BY e.tx, e.position`,
    [partition, after.tx, after.seq, limit]
  )
  const present = rows.filter((r) => r.tx !== null)
  const horizon = rows[0]!.horizon
  // (tx, position) order puts every settled row before every unsettled one: take the prefix
  const settled = present.filter((r) => isSettled(r.tx, horizon))
  return { rows: settled, held: settled.length < present.length }
}

/** The last settled entry of a partition, and whether committed entries after it are held. */
export const lastSettled = async (sql: SqlClient | SqlTx, partition: number): Promise<{ last: PgPosition | null; held: boolean }> => {
  const { rows } = await sql.query<{ horizon: string; last_tx: string | null; last_position: string | null; top_tx: string | null }>(
    `SELECT h.horizon,
       (SELECT tx FROM events WHERE partition = $1 ORDER BY tx DESC, position DESC LIMIT 1) AS top_tx,
       s.tx AS last_tx, s.position AS last_position
     FROM (SELECT ${horizonSql(sql.dialect)} AS horizon) h
     LEFT JOIN LATERAL (
       SELECT tx, position FROM events WHERE partition = $1 AND tx < h.horizon ORDER BY tx DESC, position DESC LIMIT 1
     ) s ON true`,
    [partition]
  )
  const r = rows[0]!
  return {
    last: r.last_tx === null || r.last_position === null ? null : { tx: r.last_tx, seq: r.last_position },
    held: r.top_tx !== null && !isSettled(r.top_tx, r.horizon)
  }
}
