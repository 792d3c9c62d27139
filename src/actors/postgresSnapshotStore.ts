import { Effect } from "effect"
import type { SqlClient } from "../db/sql.js"
import type { Json } from "./decider/mergePatch.js"
import { SnapshotUnavailable } from "./snapshotStore.js"
import type { Snapshot, SnapshotStoreService, StoredEntry } from "./snapshotStore.js"

const call = <A>(operation: string, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (cause) => new SnapshotUnavailable({ operation, cause }) })

/** Replaces a stored row only from a newer lease, or the same lease at the same or a newer version. */
const newer = (t: string) => `(EXCLUDED.fence > ${t}.fence OR (EXCLUDED.fence = ${t}.fence AND EXCLUDED.version >= ${t}.version))`

/**
 * Snapshots in Postgres (sql/0030, sql/0015): the bot-level part in `actor_snapshots` (one row
 * per bot), the keyed entries in `actor_entries` (hash-partitioned by bot, one row per user or
 * session, written when changed). Used in both modes: Redis holds only the hot log, so its memory
 * does not grow with how many users the fleet's bots know. The store does not close `sql`.
 */
export const makePostgresSnapshotStore = (sql: SqlClient): SnapshotStoreService => ({
  load: (botId) =>
    call("load", async (): Promise<Snapshot | null> => {
      const { rows } = await sql.query<{ version: string; schema_version: number; fence: string; state: unknown }>(
        "SELECT version::text AS version, schema_version, fence::text AS fence, state FROM actor_snapshots WHERE bot_id = $1",
        [botId]
      )
      const r = rows[0]
      return r ? { version: Number(r.version), schemaVersion: Number(r.schema_version), fence: Number(r.fence), state: r.state } : null
    }),
  version: (botId) =>
    call("version", async () => {
      const { rows } = await sql.query<{ version: string }>("SELECT version::text AS version FROM actor_snapshots WHERE bot_id = $1", [botId])
      return Number(rows[0]?.version ?? 0)
    }),
  loadEntries: (botId, keys) =>
    keys.length === 0
      ? Effect.succeed([])
      : call("loadEntries", async (): Promise<ReadonlyArray<StoredEntry>> => {
          const { rows } = await sql.query<{ key: string; version: string; data: Json }>(
            "SELECT key, version::text AS version, data FROM actor_entries WHERE bot_id = $1 AND key = ANY($2::text[])",
            [botId, keys]
          )
          return rows.map((r) => ({ key: r.key, version: Number(r.version), data: r.data }))
        }),
  save: (botId, s, entries) =>
    call("save", () =>
      sql.transaction(async (tx) => {
        await tx.query(
          `INSERT INTO actor_snapshots (bot_id, version, schema_version, fence, state) VALUES ($1, $2, $3, $4, $5::jsonb)
           ON CONFLICT (bot_id) DO UPDATE SET version = EXCLUDED.version, schema_version = EXCLUDED.schema_version,
             fence = EXCLUDED.fence, state = EXCLUDED.state, saved_at = now()
           WHERE ${newer("actor_snapshots")}`,
          [botId, s.version, s.schemaVersion, s.fence, JSON.stringify(s.state)]
        )
        const written = entries.filter(([, v]) => v !== null)
        if (written.length > 0) {
          await tx.query(
            `INSERT INTO actor_entries (bot_id, key, fence, version, data)
             SELECT $1, u.key, $2, $3, u.data::jsonb FROM unnest($4::text[], $5::text[]) AS u(key, data)
             ON CONFLICT (bot_id, key) DO UPDATE SET fence = EXCLUDED.fence, version = EXCLUDED.version, data = EXCLUDED.data
             WHERE ${newer("actor_entries")}`,
            [botId, s.fence, s.version, written.map(([k]) => k), written.map(([, v]) => JSON.stringify(v))]
          )
        }
        const deleted = entries.filter(([, v]) => v === null).map(([k]) => k)
        if (deleted.length > 0) {
          await tx.query(
            `DELETE FROM actor_entries WHERE bot_id = $1 AND key = ANY($2::text[]) AND (fence < $3 OR (fence = $3 AND version <= $4))`,
            [botId, deleted, s.fence, s.version]
          )
        }
      })
    ),
  reset: (botId, fence) =>
    call("reset", () =>
      sql.transaction(async (tx) => {
        await tx.query("DELETE FROM actor_snapshots WHERE bot_id = $1 AND fence <= $2", [botId, fence])
        await tx.query("DELETE FROM actor_entries WHERE bot_id = $1 AND fence <= $2", [botId, fence])
      })
    ),
  close: Effect.void
})
