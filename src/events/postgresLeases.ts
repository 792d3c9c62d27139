import type { SqlClient } from "../db/sql.js"
import type { Lease } from "./eventLog.js"

interface LeaseRow {
  readonly node_id: string
  readonly fence: string
  readonly expires_ms: number
  readonly [column: string]: unknown
}

const RETURNING = "RETURNING node_id, fence, floor(extract(epoch FROM expires_at) * 1000)::float8 AS expires_ms"

const toLease = (botId: string, r: LeaseRow | undefined): Lease | null =>
  r === undefined ? null : { botId, nodeId: r.node_id, fence: Number(r.fence), expiresAt: r.expires_ms }

/**
 * Leases in the `leases` table, timed by the database clock (`now()`), never a node's, so nodes
 * with skewed clocks still agree on expiry. Each operation is one statement, atomic on its own.
 */
export const makePostgresLeases = (sql: SqlClient) => ({
  /**
   * Takes the lease if nobody holds it, it expired or was released, or it is already ours.
   * Re-taking our own unreleased lease keeps the fence; any change of hands (or a take after a
   * release) increments it, so a writer holding an older fence is refused at append.
   */
  acquire: async (botId: string, nodeId: string, ttlMs: number): Promise<Lease | null> => {
    const { rows } = await sql.query<LeaseRow>(
      `INSERT INTO leases AS l (bot_id, node_id, fence, expires_at, released)
       VALUES ($1, $2, 1, now() + $3::float8 * interval '1 millisecond', false)
       ON CONFLICT (bot_id) DO UPDATE SET
         fence = CASE WHEN l.node_id = EXCLUDED.node_id AND NOT l.released THEN l.fence ELSE l.fence + 1 END,
         node_id = EXCLUDED.node_id,
         expires_at = EXCLUDED.expires_at,
         released = false
       WHERE l.released OR l.expires_at <= now() OR l.node_id = EXCLUDED.node_id
       ${RETURNING}`,
      [botId, nodeId, ttlMs]
    )
    return toLease(botId, rows[0])
  },
  /** Extends the lease if it is still ours (same node and fence, not released). */
  renew: async (lease: Lease, ttlMs: number): Promise<Lease | null> => {
    const { rows } = await sql.query<LeaseRow>(
      `UPDATE leases SET expires_at = now() + $4::float8 * interval '1 millisecond'
       WHERE bot_id = $1 AND node_id = $2 AND fence = $3 AND NOT released
       ${RETURNING}`,
      [lease.botId, lease.nodeId, lease.fence, ttlMs]
    )
    return toLease(lease.botId, rows[0])
  },
  release: async (lease: Lease): Promise<boolean> => {
    const { rowCount } = await sql.query("UPDATE leases SET released = true WHERE bot_id = $1 AND fence = $2 AND NOT released", [
      lease.botId,
      lease.fence
    ])
    return rowCount > 0
  },
  read: async (botId: string): Promise<Lease | null> => {
    const { rows } = await sql.query<LeaseRow>(
      "SELECT node_id, fence, floor(extract(epoch FROM expires_at) * 1000)::float8 AS expires_ms FROM leases WHERE bot_id = $1 AND NOT released",
      [botId]
    )
    return toLease(botId, rows[0])
  }
})
