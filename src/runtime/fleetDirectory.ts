import { Data, Effect } from "effect"
import type { SqlClient } from "../db/sql.js"

/** The fleet directory's database could not answer. Retryable. */
export class DirectoryUnavailable extends Data.TaggedError("DirectoryUnavailable")<{ readonly operation: string; readonly cause: unknown }> {
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `fleet directory unavailable during ${this.operation}: ${cause}`
  }
}

/**
 * Which bots the fleet runs (`fleet_bots`, sql/0030_runtime_stores.sql): every node starts each of
 * them, and the lease decides which node actually runs it. A bot's facts (kind, mode, token) stay
 * in its stream; this is only the list. `add` is idempotent.
 */
export interface FleetDirectory {
  readonly add: (botId: string) => Effect.Effect<void, DirectoryUnavailable>
  readonly list: Effect.Effect<ReadonlyArray<string>, DirectoryUnavailable>
}

export const makeFleetDirectory = (sql: SqlClient): FleetDirectory => ({
  add: (botId) =>
    Effect.tryPromise({
      try: () => sql.query("INSERT INTO fleet_bots (bot_id) VALUES ($1) ON CONFLICT (bot_id) DO NOTHING", [botId]),
      catch: (cause) => new DirectoryUnavailable({ operation: "add", cause })
    }).pipe(Effect.asVoid),
  list: Effect.tryPromise({
    try: async () => (await sql.query<{ bot_id: string }>("SELECT bot_id FROM fleet_bots ORDER BY bot_id")).rows.map((r) => r.bot_id),
    catch: (cause) => new DirectoryUnavailable({ operation: "list", cause })
  })
})
