import { Data, Effect } from "effect"
import type { SqlClient } from "../db/sql.js"
import { isLive } from "./placement.pure.js"

/** The node registry's database could not answer. Retryable: the node keeps its last view. */
export class RegistryUnavailable extends Data.TaggedError("RegistryUnavailable")<{ readonly operation: string; readonly cause: unknown }> {
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `node registry unavailable during ${this.operation}: ${cause}`
  }
}

/** A node as `status` shows it (sql/0125: fleet_nodes). */
export interface NodeRow {
  readonly nodeId: string
  readonly version: string
  readonly eventVersions: Readonly<Record<string, number>>
  readonly botsHeld: number
  readonly startedAt: string
  readonly heartbeatAt: string
  /** Milliseconds since the last heartbeat, by the database's clock. */
  readonly heartbeatAgeMs: number
  readonly leaseTtlMs: number
  /** Stopped gracefully (its bots were handed over). */
  readonly stopped: boolean
  /** Beats within its lease TTL and was not stopped: placement counts it. */
  readonly live: boolean
}

const attempt = <A>(operation: string, run: () => Promise<A>) => Effect.tryPromise({ try: run, catch: (cause) => new RegistryUnavailable({ operation, cause }) })

/**
 * The registry of nodes sharing the fleet (sql/0125). Every method is one statement; times come
 * from the database's clock, so nodes need no synchronised clocks to agree on who still beats.
 */
export const makeNodeRegistry = (sql: SqlClient) => ({
  /** Joins (or re-joins under the same id): fresh heartbeat, not stopped, and its old refusals forgotten (it may be a newer version now). */
  register: (n: { readonly nodeId: string; readonly version: string; readonly eventVersions: Readonly<Record<string, number>>; readonly leaseTtlMs: number }) =>
    attempt("register", () =>
      sql.transaction(async (tx) => {
        await tx.query(
          `INSERT INTO fleet_nodes (node_id, version, event_versions, lease_ttl_ms, bots_held, started_at, heartbeat_at, stopped_at)
           VALUES ($1, $2, $3::jsonb, $4, 0, now(), now(), NULL)
           ON CONFLICT (node_id) DO UPDATE SET version = EXCLUDED.version, event_versions = EXCLUDED.event_versions,
             lease_ttl_ms = EXCLUDED.lease_ttl_ms, bots_held = 0, started_at = now(), heartbeat_at = now(), stopped_at = NULL`,
          [n.nodeId, n.version, JSON.stringify(n.eventVersions), n.leaseTtlMs]
        )
        await tx.query("DELETE FROM bot_refusals WHERE node_id = $1", [n.nodeId])
      })
    ),
  heartbeat: (nodeId: string, botsHeld: number) =>
    attempt("heartbeat", () => sql.query("UPDATE fleet_nodes SET heartbeat_at = now(), bots_held = $2 WHERE node_id = $1", [nodeId, botsHeld])).pipe(
      Effect.asVoid
    ),
  /** A graceful stop: the others stop counting this node at their next look, before its leases are even released. */
  markStopped: (nodeId: string) =>
    attempt("stop", () => sql.query("UPDATE fleet_nodes SET stopped_at = now(), bots_held = 0 WHERE node_id = $1", [nodeId])).pipe(Effect.asVoid),
  nodes: attempt("list", async () => {
    const r = await sql.query<{
      node_id: string
      version: string
      event_versions: Record<string, number> | string
      bots_held: number
      started_at: Date | string
      heartbeat_at: Date | string
      age_ms: string | number
      lease_ttl_ms: number
      stopped: boolean
    }>(
      `SELECT node_id, version, event_versions, bots_held, started_at, heartbeat_at, lease_ttl_ms, stopped_at IS NOT NULL AS stopped,
              floor(extract(epoch FROM (now() - heartbeat_at)) * 1000)::bigint AS age_ms
         FROM fleet_nodes ORDER BY node_id`
    )
    return r.rows.map((row): NodeRow => {
      const heartbeatAgeMs = Math.max(0, Number(row.age_ms))
      const base = { heartbeatAgeMs, leaseTtlMs: Number(row.lease_ttl_ms), stopped: row.stopped }
      return {
        nodeId: row.node_id,
        version: row.version,
        eventVersions: typeof row.event_versions === "string" ? (JSON.parse(row.event_versions) as Record<string, number>) : row.event_versions,
        botsHeld: Number(row.bots_held),
        startedAt: new Date(row.started_at).toISOString(),
        heartbeatAt: new Date(row.heartbeat_at).toISOString(),
        ...base,
        live: isLive(base)
      }
    })
  }),
  /** Bot → the nodes that refused it. */
  refusals: attempt("refusals", async () => {
    const r = await sql.query<{ bot_id: string; node_id: string }>("SELECT bot_id, node_id FROM bot_refusals")
    const by = new Map<string, Set<string>>()
    for (const row of r.rows) {
      const s = by.get(row.bot_id) ?? new Set<string>()
      s.add(row.node_id)
      by.set(row.bot_id, s)
    }
    return by
  }),
  refuse: (botId: string, nodeId: string, reason: string) =>
    attempt("refuse", () =>
      sql.query(
        `INSERT INTO bot_refusals (bot_id, node_id, reason) VALUES ($1, $2, $3)
         ON CONFLICT (bot_id, node_id) DO UPDATE SET reason = EXCLUDED.reason, refused_at = now()`,
        [botId, nodeId, reason.slice(0, 500)]
      )
    ).pipe(Effect.asVoid),
  /** Drops a stopped or long-gone node's row (`botfleet nodes forget`); its refusals go with it. */
  forget: (nodeId: string) =>
    attempt("forget", () =>
      sql.transaction(async (tx) => {
        const r = await tx.query("DELETE FROM fleet_nodes WHERE node_id = $1", [nodeId])
        await tx.query("DELETE FROM bot_refusals WHERE node_id = $1", [nodeId])
        return r.rowCount > 0
      })
    )
})

export type NodeRegistry = ReturnType<typeof makeNodeRegistry>
