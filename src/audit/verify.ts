import { timingSafeEqual } from "node:crypto"
import { Data, Effect } from "effect"
import { inRole } from "../db/roles.js"
import type { SqlClient } from "../db/sql.js"
import { anchorHash, auditRowHash, eventHash, signAnchor } from "../projections/auditChain.js"
import type { AnchoredLane } from "../projections/mapping/auditChainContent.js"

/*
 * `botfleet audit verify`: recomputes every audit row's hashes from what the database holds and
 * checks each lane link by link, then checks the owner's anchors (their own chain, their
 * signatures, and that every anchored lane head is still there, unchanged). Reads run as the
 * auditor role scoped to one owner at a time; owners are listed as the projector. Read-only.
 */

/** What a broken link is. */
export type BreakKind =
  /** The audit row's archived event is gone (or moved to another owner). */
  | "event-missing"
  /** The archived event is not the one the row was chained with (archive or event_hash rewritten). */
  | "event-hash"
  /** The lane skips or repeats a position (rows deleted or inserted). */
  | "position"
  /** The row does not point at the row before it. */
  | "prev-hash"
  /** The row's own content no longer gives its hash (a field rewritten). */
  | "row-hash"
  /** The owner's anchors do not chain (an anchor deleted, inserted or rewritten). */
  | "anchor-chain"
  /** An anchor's signature is not the fleet key's (forged or rewritten without the key). */
  | "anchor-signature"
  /** An anchored lane head has another hash now (history rewritten and re-chained). */
  | "anchor-mismatch"
  /** A lane ends before a position an anchor recorded (rows deleted from its end). */
  | "lane-truncated"

/** The first broken link of an owner: where, what, what was expected and what was found. */
export interface ChainBreak {
  readonly ownerId: string
  /** The lane (bot); null for a break in the owner's anchor chain. */
  readonly botId: string | null
  /** Position in the lane (chain_seq), or the anchor's number for anchor-chain / anchor-signature. */
  readonly position: number
  readonly version: number | null
  readonly what: BreakKind
  readonly expected: string
  readonly found: string
}

export interface OwnerVerification {
  readonly ownerId: string
  /** Audit rows checked (up to the first break). */
  readonly rows: number
  readonly anchors: number
  /** The owner's newest anchor (number and hash): keep it elsewhere to catch a rollback of the anchors. */
  readonly lastAnchor: { readonly seq: number; readonly hash: string } | null
  /** The head of each lane as verified (what an anchor may record); complete only when `break` is null. */
  readonly heads: ReadonlyArray<AnchoredLane>
  readonly break: ChainBreak | null
}

export interface AuditVerification {
  readonly owners: ReadonlyArray<OwnerVerification>
  readonly rows: number
  readonly ok: boolean
  /** The first break, in owner order. */
  readonly firstBreak: ChainBreak | null
}

/** The database could not be read (not a broken chain: nothing was concluded). */
export class AuditVerifyFailed extends Data.TaggedError("AuditVerifyFailed")<{ readonly stage: string; readonly cause: unknown }> {
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `audit verification failed while reading ${this.stage}: ${cause}`
  }
}

export interface VerifyOptions {
  readonly sql: SqlClient
  /** Owners to verify (validated); absent: every owner with audit rows or anchors. */
  readonly ownerIds?: ReadonlyArray<string>
  /** The anchor key (anchorKeyFrom(BOTFLEET_SECRET_KEY)): anchors' signatures are checked with it. */
  readonly anchorKey: Uint8Array
  /** Audit rows per read (default 2,000). */
  readonly pageSize?: number
  /** Rows checked so far of the total (the CLI's progress bar). */
  readonly onProgress?: (done: number, total: number) => void
}

const INSTANT = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`

interface Row extends Record<string, unknown> {
  bot_id: string; version: number; owner_id: string; actor: string; actor_kind: string; event_type: string; summary: string
  occurred_at: string; chain_seq: number; event_hash: string; prev_hash: string | null; row_hash: string
  event_id: string | null; type: string | null; schema_version: number | null; e_occurred_at: string | null
  correlation_id: string | null; causation_id: string | null; e_actor: string | null; data: string | null
}

interface AnchorRow extends Record<string, unknown> {
  seq: number; lanes: string; prev_anchor_hash: string | null; anchor_hash: string; signature: string
}

const sameHex = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b))

/**
 * Every owner that has audit rows or anchors, read as the projector (which sees them all): from
 * the audit log itself (one index probe per owner), not from `owners`, which the projector may
 * rewrite, so no owner can be left out of a verification by deleting a row elsewhere.
 */
export const auditedOwners = (sql: SqlClient): Promise<ReadonlyArray<string>> =>
  inRole(sql, { role: "projector" }, async (tx) =>
    (
      await tx.query<{ owner_id: string }>(
        `WITH RECURSIVE o AS (
           SELECT min(owner_id) AS id FROM audit_log
           UNION ALL
           SELECT (SELECT min(owner_id) FROM audit_log WHERE owner_id > o.id) FROM o WHERE o.id IS NOT NULL)
         SELECT id AS owner_id FROM o WHERE id IS NOT NULL
         UNION SELECT owner_id FROM audit_anchors ORDER BY 1`
      )
    ).rows.map((r) => r.owner_id)
  )

/** Checks one owner's anchors; returns the newest anchored head of each lane, or the first break. */
const checkAnchors = (ownerId: string, anchors: ReadonlyArray<AnchorRow>, key: Uint8Array): { heads: Map<string, { seq: number; hash: string }>; broken: ChainBreak | null } => {
  const heads = new Map<string, { seq: number; hash: string }>()
  let prev: string | null = null
  for (const [i, a] of anchors.entries()) {
    const at = (what: BreakKind, expected: string, found: string): ChainBreak => ({ ownerId, botId: null, position: a.seq, version: null, what, expected, found })
    if (a.seq !== i + 1) return { heads, broken: at("anchor-chain", `anchor ${i + 1}`, `anchor ${a.seq}`) }
    if (a.prev_anchor_hash !== prev) return { heads, broken: at("anchor-chain", `previous anchor hash ${prev ?? "(none)"}`, String(a.prev_anchor_hash ?? "(none)")) }
    const lanes = JSON.parse(a.lanes) as Array<AnchoredLane>
    const hash = anchorHash(ownerId, a.seq, prev, lanes)
    if (hash !== a.anchor_hash) return { heads, broken: at("anchor-chain", `anchor hash ${hash}`, a.anchor_hash) }
    const signature = signAnchor(key, a.anchor_hash)
    if (!sameHex(signature, a.signature)) return { heads, broken: at("anchor-signature", "a signature made with the fleet's anchor key", a.signature) }
    for (const [botId, seq, rowHash] of lanes) heads.set(botId, { seq, hash: rowHash })
    prev = a.anchor_hash
  }
  return { heads, broken: null }
}

/** Verifies one owner: its anchors, then its lanes page by page. */
export const verifyOwner = (o: VerifyOptions & { readonly ownerId: string; readonly progress?: (rows: number) => void }): Effect.Effect<OwnerVerification, AuditVerifyFailed> =>
  Effect.gen(function* () {
    const { sql, ownerId } = o
    const scope = { role: "auditor", ownerIds: [ownerId] } as const
    const read = <A>(stage: string, f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: (cause) => new AuditVerifyFailed({ stage, cause }) })
    const anchors = yield* read("the anchors", () =>
      inRole(sql, scope, async (tx) =>
        (await tx.query<AnchorRow>("SELECT seq, lanes::text AS lanes, prev_anchor_hash, anchor_hash, signature FROM audit_anchors WHERE owner_id = $1 ORDER BY seq", [ownerId])).rows
      )
    )
    const newest = anchors[anchors.length - 1]
    const lastAnchor = newest ? { seq: newest.seq, hash: newest.anchor_hash } : null
    const checked = checkAnchors(ownerId, anchors, o.anchorKey)
    if (checked.broken) return { ownerId, rows: 0, anchors: anchors.length, lastAnchor, heads: [], break: checked.broken }
    const anchored = checked.heads

    const heads: AnchoredLane[] = []
    let rows = 0
    let lane: { bot: string; seq: number; hash: string | null; version: number } | null = null
    const closeLane = (): ChainBreak | null => {
      if (lane === null) return null
      heads.push([lane.bot, lane.seq, lane.hash!])
      const a = anchored.get(lane.bot)
      anchored.delete(lane.bot)
      if (a && a.seq > lane.seq) {
        return { ownerId, botId: lane.bot, position: a.seq, version: null, what: "lane-truncated", expected: `position ${a.seq} with hash ${a.hash}`, found: `the lane ends at position ${lane.seq}` }
      }
      return null
    }
    const check = (r: Row): ChainBreak | null => {
      if (lane === null || lane.bot !== r.bot_id) {
        const b = closeLane()
        if (b) return b
        lane = { bot: r.bot_id, seq: 0, hash: null, version: 0 }
      }
      const at = (what: BreakKind, expected: string, found: string): ChainBreak => ({ ownerId, botId: r.bot_id, position: r.chain_seq, version: r.version, what, expected, found })
      if (r.event_id === null) return at("event-missing", `archived event at version ${r.version}`, "none")
      const eh = eventHash({
        event_id: r.event_id, bot_id: r.bot_id, version: r.version, type: r.type!, schema_version: r.schema_version!, occurred_at: r.e_occurred_at!,
        correlation_id: r.correlation_id!, causation_id: r.causation_id, actor: r.e_actor!, data: r.data!
      })
      if (eh !== r.event_hash) return at("event-hash", eh, r.event_hash)
      if (r.chain_seq !== lane.seq + 1) return at("position", `position ${lane.seq + 1}`, `position ${r.chain_seq}`)
      if (r.prev_hash !== lane.hash) return at("prev-hash", lane.hash ?? "(none: first of its lane)", r.prev_hash ?? "(none)")
      const rh = auditRowHash({
        prev_hash: r.prev_hash, owner_id: r.owner_id, bot_id: r.bot_id, chain_seq: r.chain_seq, version: r.version, event_hash: r.event_hash,
        actor: r.actor, actor_kind: r.actor_kind, event_type: r.event_type, summary: r.summary, occurred_at: r.occurred_at
      })
      if (rh !== r.row_hash) return at("row-hash", rh, r.row_hash)
      const a = anchored.get(r.bot_id)
      if (a && a.seq === r.chain_seq && a.hash !== r.row_hash) return at("anchor-mismatch", a.hash, r.row_hash)
      lane = { bot: r.bot_id, seq: r.chain_seq, hash: r.row_hash, version: r.version }
      return null
    }

    const pageSize = o.pageSize ?? 2000
    let after: [string, number] | null = null
    for (;;) {
      const page: ReadonlyArray<Row> = yield* read("the audit log", () =>
        inRole(sql, scope, async (tx) =>
          (
            await tx.query<Row>(
              `SELECT a.bot_id, a.version, a.owner_id, a.actor, a.actor_kind, a.event_type, a.summary::text AS summary,
                      to_char(a.occurred_at AT TIME ZONE 'UTC', ${INSTANT}) AS occurred_at, a.chain_seq, a.event_hash, a.prev_hash, a.row_hash,
                      e.event_id, e.type, e.schema_version, to_char(e.occurred_at AT TIME ZONE 'UTC', ${INSTANT}) AS e_occurred_at,
                      e.correlation_id, e.causation_id, e.actor AS e_actor, e.data::text AS data
                 FROM audit_log a LEFT JOIN events_archive e ON e.bot_id = a.bot_id AND e.version = a.version
                WHERE a.owner_id = $1 ${after ? "AND (a.bot_id, a.version) > ($3, $4)" : ""}
                ORDER BY a.bot_id, a.version LIMIT $2`,
              after ? [ownerId, pageSize, after[0], after[1]] : [ownerId, pageSize]
            )
          ).rows
        )
      )
      for (const r of page) {
        const broken = check(r)
        if (broken) return { ownerId, rows, anchors: anchors.length, lastAnchor, heads, break: broken }
        rows++
      }
      o.progress?.(rows)
      if (page.length < pageSize) break
      const last = page[page.length - 1]!
      after = [last.bot_id, last.version]
    }
    const end = closeLane()
    if (end) return { ownerId, rows, anchors: anchors.length, lastAnchor, heads, break: end }
    // anchored lanes with no row left at all
    for (const [botId, a] of anchored) {
      return { ownerId, rows, anchors: anchors.length, lastAnchor, heads, break: { ownerId, botId, position: a.seq, version: null, what: "lane-truncated", expected: `position ${a.seq} with hash ${a.hash}`, found: "no audit row left in the lane" } }
    }
    return { ownerId, rows, anchors: anchors.length, lastAnchor, heads, break: null }
  })

/**
 * Verifies the audit log of the given owners (default: all). Guarantees: every audit row of each
 * owner is checked against its archived event, its lane's previous row, its own content and the
 * owner's anchors, until the owner's first broken link, which is reported with where it is, what
 * broke, and the expected and found values; `ok` is true only when no owner has a break. Changes
 * nothing. Fails with AuditVerifyFailed only when the database cannot be read.
 */
export const verifyAudit = (o: VerifyOptions): Effect.Effect<AuditVerification, AuditVerifyFailed> =>
  Effect.gen(function* () {
    const read = <A>(stage: string, f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: (cause) => new AuditVerifyFailed({ stage, cause }) })
    const owners = o.ownerIds ?? (yield* read("the list of owners", () => auditedOwners(o.sql)))
    const total = yield* read("the audit log size", () =>
      inRole(o.sql, { role: "auditor", ownerIds: owners }, async (tx) => Number((await tx.query<{ n: string }>("SELECT count(*) AS n FROM audit_log")).rows[0]!.n))
    )
    const results: OwnerVerification[] = []
    let done = 0
    o.onProgress?.(0, total)
    for (const ownerId of owners) {
      const before = done
      const r = yield* verifyOwner({ ...o, ownerId, progress: (rows) => o.onProgress?.(before + rows, Math.max(total, before + rows)) })
      done = before + r.rows
      o.onProgress?.(done, Math.max(total, done))
      results.push(r)
    }
    const firstBreak = results.find((r) => r.break !== null)?.break ?? null
    return { owners: results, rows: done, ok: firstBreak === null, firstBreak }
  })
