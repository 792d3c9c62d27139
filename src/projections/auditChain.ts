import { createHash, createHmac } from "node:crypto"
import type { SqlTx } from "../db/sql.js"
import { anchorContent, auditRowContent, eventContent } from "./mapping/auditChainContent.js"
import type { AnchoredLane, ChainedAuditRow, ChainedEvent } from "./mapping/auditChainContent.js"
import type { AuditRow, BatchRows } from "./mapping/rows.js"

/*
 * The audit hash chain's hashing and the projector's half of it: chaining a batch's audit rows
 * onto their lanes. A lane is one bot's audit rows in version order (the order its single writer
 * recorded them in), so the chain is a pure function of the archived events: the projector, a
 * rebuild and the migration's backfill all make the same one, whatever order partitions are
 * projected in. The owner's chain is the set of its bots' lanes, tied together by the owner's
 * anchors (auditAnchors.ts).
 */

export const sha256Hex = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex")

export const eventHash = (e: ChainedEvent): string => sha256Hex(eventContent(e))

export const auditRowHash = (a: ChainedAuditRow): string => sha256Hex(auditRowContent(a))

export const anchorHash = (ownerId: string, seq: number, prev: string | null, lanes: ReadonlyArray<AnchoredLane>): string =>
  sha256Hex(anchorContent(ownerId, seq, prev, lanes))

/** HMAC-SHA256 of an anchor hash with the anchor key, hex. */
export const signAnchor = (key: Uint8Array, hash: string): string => createHmac("sha256", key).update(hash, "utf8").digest("hex")

/**
 * The anchor signing key, derived from the fleet key (BOTFLEET_SECRET_KEY): nodes and the CLI hold
 * it, the database never does. A separate derivation, so an anchor signature says nothing about
 * the key that seals tokens.
 */
export const anchorKeyFrom = (secretKey: Uint8Array): Uint8Array =>
  new Uint8Array(createHmac("sha256", secretKey).update("botfleet audit anchor key v1", "utf8").digest())

/** An instant as Postgres returns it from the archive (bf_instant_text, ARCHIVE_COLUMNS). */
const INSTANT = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`

const key = (botId: string, version: number) => `${botId}\u0000${version}`

/**
 * Fills in the chain fields of a batch's audit rows (mapped by mapBatch, in log order), chaining
 * each onto the last row of its lane in `auditTable` (the live table, or a rebuild's shadow), read
 * in the caller's transaction. Guarantees: positions run on from the lane's last one (1 for a new
 * lane), each row's prev_hash is the row_hash before it, and the hashes are computed from the
 * texts Postgres will store (instants and JSON normalised by Postgres itself in one query), so a
 * verification reading the rows back gets the same hashes. The batch must not hold a row already
 * in the table (the projector skips events it already archived).
 */
export const chainAuditRows = async (tx: SqlTx, rows: BatchRows, auditTable: string): Promise<ReadonlyArray<AuditRow>> => {
  const audit = rows.audit
  if (audit.length === 0) return audit
  const archived = new Map(rows.archive.map((a) => [key(a.bot_id, a.version), a]))
  const events = audit.map((r) => {
    const e = archived.get(key(r.bot_id, r.version))
    if (!e) throw new Error(`audit row of bot ${r.bot_id} version ${r.version} has no archive row in its batch`)
    return e
  })
  // the texts as stored: the same casts the inserts make (text -> timestamptz / jsonb), printed back
  const normalised = (
    await tx.query<{ event_at: string; data: string; audit_at: string; summary: string }>(
      `SELECT to_char(u.event_at::timestamptz AT TIME ZONE 'UTC', ${INSTANT}) AS event_at, u.data::jsonb::text AS data,
              to_char(u.audit_at::timestamptz AT TIME ZONE 'UTC', ${INSTANT}) AS audit_at, u.summary::jsonb::text AS summary
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS u(event_at, data, audit_at, summary, i)
        ORDER BY u.i`,
      [events.map((e) => e.occurred_at), events.map((e) => e.data), audit.map((r) => r.occurred_at), audit.map((r) => r.summary)]
    )
  ).rows
  const bots = [...new Set(audit.map((r) => r.bot_id))]
  const heads = new Map(
    (
      await tx.query<{ bot_id: string; chain_seq: number; row_hash: string }>(
        `SELECT DISTINCT ON (bot_id) bot_id, chain_seq, row_hash FROM ${auditTable} WHERE bot_id = ANY($1::text[]) ORDER BY bot_id, version DESC`,
        [bots]
      )
    ).rows.map((h) => [h.bot_id, { seq: h.chain_seq, hash: h.row_hash as string | null }])
  )
  return audit.map((r, i) => {
    const e = events[i]!
    const n = normalised[i]!
    const lane = heads.get(r.bot_id) ?? { seq: 0, hash: null }
    const event_hash = eventHash({
      event_id: e.event_id, bot_id: e.bot_id, version: e.version, type: e.type, schema_version: e.schema_version,
      occurred_at: n.event_at, correlation_id: e.correlation_id, causation_id: e.causation_id, actor: e.actor, data: n.data
    })
    const chained: ChainedAuditRow = {
      prev_hash: lane.hash, owner_id: r.owner_id, bot_id: r.bot_id, chain_seq: lane.seq + 1, version: r.version, event_hash,
      actor: r.actor, actor_kind: r.actor_kind, event_type: r.event_type, summary: n.summary, occurred_at: n.audit_at
    }
    const row_hash = auditRowHash(chained)
    heads.set(r.bot_id, { seq: chained.chain_seq, hash: row_hash })
    return { ...r, chain_seq: chained.chain_seq, event_hash, prev_hash: lane.hash, row_hash }
  })
}
