import { Effect } from "effect"
import { inRole } from "../db/roles.js"
import type { SqlClient } from "../db/sql.js"
import { anchorHash, signAnchor } from "../projections/auditChain.js"
import type { AnchoredLane } from "../projections/mapping/auditChainContent.js"
import { AuditVerifyFailed } from "./verify.js"

/*
 * Anchors pin an owner's lane heads: once anchored, a lane can be neither rewritten and re-chained
 * (its anchored head would change) nor cut short (the anchored position would be gone) without
 * `audit verify` saying so, and an anchor cannot be forged or re-signed without the anchor key,
 * which only the nodes and the CLI hold (derived from BOTFLEET_SECRET_KEY). Written as the auditor
 * role; the projector role may not insert, change or delete anchors.
 */

export interface AnchorWritten {
  readonly ownerId: string
  readonly seq: number
  readonly lanes: number
  readonly anchorHash: string
}

/**
 * Anchors the lane heads an owner's verification found (`heads`, verified, so only verified rows
 * are ever anchored). Writes one anchor holding the lanes that moved since the owner's previous
 * anchor, chained to it and signed; nothing when none moved. Concurrent writers (two nodes) cannot
 * both write the same anchor number: the second one's insert is skipped and it reports null.
 */
export const writeAnchor = (o: {
  readonly sql: SqlClient
  readonly anchorKey: Uint8Array
  readonly ownerId: string
  readonly heads: ReadonlyArray<AnchoredLane>
}): Effect.Effect<AnchorWritten | null, AuditVerifyFailed> =>
  Effect.tryPromise({
    try: () =>
      inRole(o.sql, { role: "auditor", ownerIds: [o.ownerId] }, async (tx) => {
        const last = (
          await tx.query<{ seq: number; anchor_hash: string }>(
            "SELECT seq, anchor_hash FROM audit_anchors WHERE owner_id = $1 ORDER BY seq DESC LIMIT 1",
            [o.ownerId]
          )
        ).rows[0]
        const anchored = new Map(
          (
            await tx.query<{ bot_id: string; seq: number }>(
              `SELECT l->>0 AS bot_id, max((l->>1)::int) AS seq FROM audit_anchors, jsonb_array_elements(lanes) AS l
                WHERE owner_id = $1 GROUP BY 1`,
              [o.ownerId]
            )
          ).rows.map((r) => [r.bot_id, r.seq])
        )
        const moved = o.heads
          .filter(([botId, seq]) => seq > (anchored.get(botId) ?? 0))
          .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
        if (moved.length === 0) return null
        const seq = (last?.seq ?? 0) + 1
        const prev = last?.anchor_hash ?? null
        const hash = anchorHash(o.ownerId, seq, prev, moved)
        const inserted = await tx.query(
          `INSERT INTO audit_anchors (owner_id, seq, lanes, prev_anchor_hash, anchor_hash, signature)
           VALUES ($1, $2, $3::jsonb, $4, $5, $6) ON CONFLICT (owner_id, seq) DO NOTHING`,
          [o.ownerId, seq, JSON.stringify(moved), prev, hash, signAnchor(o.anchorKey, hash)]
        )
        return inserted.rowCount === 1 ? { ownerId: o.ownerId, seq, lanes: moved.length, anchorHash: hash } : null
      }),
    catch: (cause) => new AuditVerifyFailed({ stage: "the anchors (writing)", cause })
  })
