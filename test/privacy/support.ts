import { Effect } from "effect"
import type { SqlClient } from "../../src/db/sql.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makeProjector } from "../../src/projections/projector.js"

/** Projects every partition of `log` into `sql` until each has caught up. */
export const projectAll = async (log: EventLogService, sql: SqlClient): Promise<void> => {
  for (let p = 0; p < log.partitions; p++) {
    const projector = makeProjector({ log, sql, partition: p, blockMs: 0 })
    for (;;) if ((await Effect.runPromise(projector.step)).caughtUp) break
  }
}

/** Rows of every table of the database holding `needle` anywhere (any column, as text): where a forgotten user's data would still be. */
export const rowsHolding = async (sql: SqlClient, needle: string): Promise<Record<string, number>> => {
  const { rows: tables } = await sql.query<{ t: string }>(
    "SELECT c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
  )
  const hits: Record<string, number> = {}
  for (const { t } of tables) {
    const { rows } = await sql.query<{ n: string }>(`SELECT count(*) AS n FROM ${t} x WHERE x::text ILIKE $1`, [`%${needle}%`])
    if (Number(rows[0]!.n) > 0) hits[t] = Number(rows[0]!.n)
  }
  return hits
}
