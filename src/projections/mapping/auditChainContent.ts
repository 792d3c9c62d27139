/*
 * What the audit hash chain hashes (docs/projections.md, "Audit hash chain"). Pure: the hashing
 * itself (sha256) is in ../auditChain.ts. Each content is JSON.stringify of a fixed-order array,
 * which is canonical by construction (no key order to agree on); texts are as Postgres stores and
 * returns them (instants as `YYYY-MM-DDTHH:MM:SS.ffffffZ`, JSON as the jsonb's text), so the live
 * projector, a rebuild and a verification, which all get them from Postgres, hash the same bytes.
 * sql/0041 computes the same hashes in SQL (bf_audit_event_hash, bf_audit_row_hash).
 */

/** An archived event as the chain covers it. */
export interface ChainedEvent {
  readonly event_id: string
  readonly bot_id: string
  readonly version: number
  readonly type: string
  readonly schema_version: number
  /** `YYYY-MM-DDTHH:MM:SS.ffffffZ` */
  readonly occurred_at: string
  readonly correlation_id: string
  readonly causation_id: string | null
  readonly actor: string
  /** The jsonb's text. */
  readonly data: string
}

/** An audit row as the chain covers it (its log partition and position are not covered: they are where the entry sat in one log). */
export interface ChainedAuditRow {
  readonly prev_hash: string | null
  readonly owner_id: string
  readonly bot_id: string
  readonly chain_seq: number
  readonly version: number
  readonly event_hash: string
  readonly actor: string
  readonly actor_kind: string
  readonly event_type: string
  /** The jsonb's text. */
  readonly summary: string
  /** `YYYY-MM-DDTHH:MM:SS.ffffffZ` */
  readonly occurred_at: string
}

/** One lane head in an anchor: [bot id, chain position, row hash]. */
export type AnchoredLane = readonly [botId: string, chainSeq: number, rowHash: string]

export const eventContent = (e: ChainedEvent): string =>
  JSON.stringify(["bf-event-1", e.event_id, e.bot_id, e.version, e.type, e.schema_version, e.occurred_at, e.correlation_id, e.causation_id, e.actor, e.data])

export const auditRowContent = (a: ChainedAuditRow): string =>
  JSON.stringify(["bf-audit-1", a.prev_hash, a.owner_id, a.bot_id, a.chain_seq, a.version, a.event_hash, a.actor, a.actor_kind, a.event_type, a.summary, a.occurred_at])

/** An anchor: the owner, its place in the owner's anchor chain, the previous anchor's hash, the lanes (sorted by bot id). */
export const anchorContent = (ownerId: string, seq: number, prevAnchorHash: string | null, lanes: ReadonlyArray<AnchoredLane>): string =>
  JSON.stringify(["bf-anchor-1", ownerId, seq, prevAnchorHash, lanes])
