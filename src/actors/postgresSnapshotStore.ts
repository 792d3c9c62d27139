import { Effect } from "effect"
import type { SqlClient } from "../db/sql.js"
import { SnapshotUnavailable } from "./snapshotStore.js"
import type { Snapshot, SnapshotStoreService } from "./snapshotStore.js"

const call = <A>(operation: string, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (cause) => new SnapshotUnavailable({ operation, cause }) })

/**
 * Snapshots in Postgres, one row per bot (`actor_snapshots`, sql/0030_runtime_stores.sql): the
 * embedded mode's store. `save` keeps the newest version: an older snapshot arriving late never
 * replaces a newer one (the upsert's WHERE). The store does not close `sql`: its owner does.
 */
export const makePostgresSnapshotStore = (sql: SqlClient): SnapshotStoreService => ({
  load: (botId) =>
    call("load", async (): Promise<Snapshot | null> => {
      const { rows } = await sql.query<{ version: string; schema_version: number; state: unknown }>(
        "SELECT version::text AS version, schema_version, state FROM actor_snapshots WHERE bot_id = $1",
        [botId]
      )
      const r = rows[0]
      return r ? { version: Number(r.version), schemaVersion: Number(r.schema_version), state: r.state } : null
    }),
  save: (botId, s) =>
    call("save", async () => {
      await sql.query(
        `INSERT INTO actor_snapshots (bot_id, version, schema_version, state) VALUES ($1, $2, $3, $4::jsonb)
         ON CONFLICT (bot_id) DO UPDATE SET version = EXCLUDED.version, schema_version = EXCLUDED.schema_version,
           state = EXCLUDED.state, saved_at = now()
         WHERE actor_snapshots.version <= EXCLUDED.version`,
        [botId, s.version, s.schemaVersion, JSON.stringify(s.state)]
      )
    }),
  version: (botId) =>
    call("version", async () => {
      const { rows } = await sql.query<{ version: string }>("SELECT version::text AS version FROM actor_snapshots WHERE bot_id = $1", [botId])
      return Number(rows[0]?.version ?? 0)
    }),
  close: Effect.void
})
