import { Effect } from "effect"
import type { SqlClient } from "../db/sql.js"
import type { OffsetStore } from "./poller.js"

/**
 * Polling offsets in Postgres (`polling_offsets`, sql/0030_runtime_stores.sql): the embedded
 * mode's store. A plain upsert: only the lease holder polls, so there is one writer per bot.
 */
export const postgresOffsetStore = (sql: SqlClient): OffsetStore => ({
  load: (botId) =>
    Effect.tryPromise(async () => {
      const { rows } = await sql.query<{ next_offset: string }>("SELECT next_offset::text AS next_offset FROM polling_offsets WHERE bot_id = $1", [botId])
      return rows[0] ? Number(rows[0].next_offset) : null
    }),
  save: (botId, offset) =>
    Effect.tryPromise(async () => {
      await sql.query(
        "INSERT INTO polling_offsets (bot_id, next_offset) VALUES ($1, $2) ON CONFLICT (bot_id) DO UPDATE SET next_offset = EXCLUDED.next_offset",
        [botId, offset]
      )
    })
})
