import { Clock, Duration, Effect } from "effect"
import { inRole } from "../db/roles.js"
import type { SqlClient } from "../db/sql.js"
import { writeAnchor } from "./anchors.js"
import type { AnchorWritten } from "./anchors.js"
import { AuditVerifyFailed, verifyAudit } from "./verify.js"
import type { AuditVerification, ChainBreak, VerifyOptions } from "./verify.js"

/** One verification run as recorded in `audit_verifications` (what `botfleet status` shows). */
export interface VerificationRecord {
  readonly nodeId: string
  readonly startedAt: string
  readonly finishedAt: string
  readonly ok: boolean
  readonly owners: number
  /** Audit rows checked ("how far"). */
  readonly rows: number
  /** Anchors written by the run. */
  readonly anchors: number
  readonly firstBreak: ChainBreak | null
}

export interface VerificationRun {
  readonly report: AuditVerification
  readonly anchors: ReadonlyArray<AnchorWritten>
}

/**
 * A full verification, then (with `anchor`) an anchor for each owner whose chain verified, then
 * (with `record`) its result in `audit_verifications`. Owners with a break are never anchored, so
 * an anchor only ever pins verified rows.
 */
export const runVerification = (
  o: VerifyOptions & { readonly nodeId: string; readonly anchor: boolean; readonly record: boolean }
): Effect.Effect<VerificationRun, AuditVerifyFailed> =>
  Effect.gen(function* () {
    const startedAt = new Date(yield* Clock.currentTimeMillis).toISOString()
    const report = yield* verifyAudit(o)
    const anchors: AnchorWritten[] = []
    if (o.anchor) {
      for (const owner of report.owners) {
        if (owner.break !== null || owner.heads.length === 0) continue
        const written = yield* writeAnchor({ sql: o.sql, anchorKey: o.anchorKey, ownerId: owner.ownerId, heads: owner.heads })
        if (written) anchors.push(written)
      }
    }
    if (o.record) {
      yield* Effect.tryPromise({
        try: () =>
          inRole(o.sql, { role: "auditor", ownerIds: [] }, (tx) =>
            tx.query(
              `INSERT INTO audit_verifications (node_id, started_at, ok, owners, rows_checked, anchors, first_break)
               VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)`,
              [o.nodeId, startedAt, report.ok, report.owners.length, report.rows, anchors.length, report.firstBreak === null ? null : JSON.stringify(report.firstBreak)]
            )
          ),
        catch: (cause) => new AuditVerifyFailed({ stage: "audit_verifications (recording the result)", cause })
      })
    }
    return { report, anchors }
  })

/** The newest recorded verification run, or null when none ran yet. */
export const lastVerification = async (sql: SqlClient): Promise<VerificationRecord | null> => {
  const { rows } = await sql.query<{
    node_id: string; started_at: string; finished_at: string; ok: boolean; owners: number; rows_checked: string; anchors: number; first_break: ChainBreak | null
  }>(
    `SELECT node_id, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS started_at,
            to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS finished_at,
            ok, owners, rows_checked, anchors, first_break
       FROM audit_verifications ORDER BY id DESC LIMIT 1`
  )
  const r = rows[0]
  if (!r) return null
  return {
    nodeId: r.node_id, startedAt: r.started_at, finishedAt: r.finished_at, ok: r.ok, owners: r.owners, rows: Number(r.rows_checked),
    anchors: r.anchors, firstBreak: r.first_break
  }
}

/** A one-line summary of a break, for logs and `status`. */
export const describeBreak = (b: ChainBreak): string =>
  `owner ${b.ownerId}${b.botId === null ? ", anchor chain" : `, bot ${b.botId}`}, position ${b.position}${b.version === null ? "" : ` (version ${b.version})`}: ${b.what}: expected ${b.expected}, found ${b.found}`

/**
 * The node's periodic verification: every `every` (first run after min(every, 1 minute)), unless
 * another node ran one in the last half of `every`, verify every owner, anchor the verified ones,
 * record the result and log it (an error line naming the first broken link when broken). A run
 * that cannot read the database is logged and tried again at the next tick. Runs until interrupted.
 */
export const verifyPeriodically = (o: {
  readonly sql: SqlClient
  readonly anchorKey: Uint8Array
  readonly nodeId: string
  readonly every: Duration.DurationInput
}): Effect.Effect<never> => {
  const everyMs = Duration.toMillis(Duration.decode(o.every))
  const recentlyRun = Effect.tryPromise({
    try: () =>
      inRole(o.sql, { role: "auditor", ownerIds: [] }, async (tx) => {
        const { rows } = await tx.query<{ age_ms: number | null }>(
          "SELECT (extract(epoch FROM now() - max(started_at)) * 1000)::float8 AS age_ms FROM audit_verifications"
        )
        const age = rows[0]?.age_ms
        return age !== null && age !== undefined && Number(age) < everyMs / 2
      }),
    catch: (cause) => new AuditVerifyFailed({ stage: "audit_verifications", cause })
  })
  const once = Effect.gen(function* () {
    if (yield* recentlyRun) return
    const { report, anchors } = yield* runVerification({ sql: o.sql, anchorKey: o.anchorKey, nodeId: o.nodeId, anchor: true, record: true })
    if (report.ok) yield* Effect.logInfo(`audit chain verified: ${report.rows} rows of ${report.owners.length} owners, ${anchors.length} anchors written`)
    else yield* Effect.logError(`audit chain BROKEN: ${describeBreak(report.firstBreak!)}`).pipe(Effect.annotateLogs({ ownerId: report.firstBreak!.ownerId }))
  }).pipe(Effect.catchAll((e) => Effect.logWarning(`audit verification could not run: ${e.message}`)))
  return Effect.sleep(Duration.millis(Math.min(everyMs, 60_000))).pipe(
    Effect.zipRight(Effect.forever(once.pipe(Effect.zipRight(Effect.sleep(o.every)))))
  )
}
