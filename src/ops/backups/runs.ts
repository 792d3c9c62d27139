import { Data, Effect } from "effect"
import type { SqlClient } from "../../db/sql.js"

/*
 * The record of backup runs (sql/0080_backup_runs.sql): each scheduled or manual backup, each
 * verification and each restore drill, with what it found. Read by `botfleet status`, `botfleet
 * backup list` and the backup metrics; written by whichever node or command ran it.
 */

export type RunKind = "backup" | "verify" | "drill"

export interface BackupRun {
  readonly kind: RunKind
  /** The backup's name in its target; null when the run failed before it had one. */
  readonly backup: string | null
  readonly target: string
  readonly nodeId: string
  readonly startedAt: string
  readonly finishedAt: string
  readonly ok: boolean
  readonly events: number | null
  readonly bytes: number | null
  /** Problems (verification), differences (drill) or the error; never a secret. */
  readonly detail: Readonly<Record<string, unknown>>
}

/** The runs table could not be read or written. */
export class RunsUnavailable extends Data.TaggedError("RunsUnavailable")<{ readonly cause: unknown }> {
  override get message() {
    return `cannot read or write the backup runs (backup_runs in the database): ${this.cause instanceof Error ? this.cause.message : String(this.cause)}`
  }
}

interface RunRow {
  kind: RunKind; backup: string | null; target: string; node_id: string; started_at: string; finished_at: string
  ok: boolean; events: string | null; bytes: string | null; detail: unknown
}

const COLUMNS = `kind, backup, target, node_id,
  to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS started_at,
  to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS finished_at,
  ok, events, bytes, detail`

const toRun = (r: RunRow): BackupRun => ({
  kind: r.kind,
  backup: r.backup,
  target: r.target,
  nodeId: r.node_id,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  ok: r.ok,
  events: r.events === null ? null : Number(r.events),
  bytes: r.bytes === null ? null : Number(r.bytes),
  detail: (typeof r.detail === "string" ? JSON.parse(r.detail) : r.detail) as Record<string, unknown>
})

const io = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: (cause) => new RunsUnavailable({ cause }) })

/** Runs kept per kind at least, however old; older rows are pruned after 90 days. */
const KEEP_ROWS = 100

/** Records one run, and prunes rows older than 90 days beyond the newest 100 of each kind (so the table stays small). */
export const recordRun = (sql: SqlClient, run: BackupRun): Effect.Effect<void, RunsUnavailable> =>
  io(async () => {
    await sql.query(
      `INSERT INTO backup_runs (kind, backup, target, node_id, started_at, finished_at, ok, events, bytes, detail)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)`,
      [run.kind, run.backup, run.target, run.nodeId, run.startedAt, run.finishedAt, run.ok, run.events, run.bytes, JSON.stringify(run.detail)]
    )
    await sql.query(
      `DELETE FROM backup_runs WHERE kind = $1 AND finished_at < now() - interval '90 days'
         AND id NOT IN (SELECT id FROM backup_runs WHERE kind = $1 ORDER BY finished_at DESC LIMIT ${KEEP_ROWS})`,
      [run.kind]
    )
  })

/** The newest run of each kind, the newest successful backup, and the newest successful drill. */
export interface LatestRuns {
  readonly backup: BackupRun | null
  readonly lastGoodBackup: BackupRun | null
  readonly verify: BackupRun | null
  readonly drill: BackupRun | null
  readonly lastGoodDrill: BackupRun | null
}

export const latestRuns = (sql: SqlClient): Effect.Effect<LatestRuns, RunsUnavailable> =>
  io(async () => {
    const one = async (where: string, kind: RunKind) => {
      const { rows } = await sql.query<RunRow & Record<string, unknown>>(`SELECT ${COLUMNS} FROM backup_runs WHERE kind = $1 ${where} ORDER BY finished_at DESC, id DESC LIMIT 1`, [kind])
      return rows[0] ? toRun(rows[0]) : null
    }
    return {
      backup: await one("", "backup"),
      lastGoodBackup: await one("AND ok", "backup"),
      verify: await one("", "verify"),
      drill: await one("", "drill"),
      lastGoodDrill: await one("AND ok", "drill")
    }
  })

/** Per backup name, its newest run of each kind (what `backup list` shows as verified and drilled). */
export const runsByBackup = (sql: SqlClient, names: ReadonlyArray<string>): Effect.Effect<ReadonlyMap<string, Partial<Record<RunKind, BackupRun>>>, RunsUnavailable> =>
  io(async () => {
    const out = new Map<string, Partial<Record<RunKind, BackupRun>>>()
    if (names.length === 0) return out
    const { rows } = await sql.query<RunRow & Record<string, unknown>>(
      `SELECT DISTINCT ON (backup, kind) ${COLUMNS} FROM backup_runs WHERE backup = ANY($1::text[]) ORDER BY backup, kind, finished_at DESC, id DESC`,
      [names]
    )
    for (const r of rows) {
      const run = toRun(r)
      const entry = out.get(run.backup!) ?? {}
      entry[run.kind] = run
      out.set(run.backup!, entry)
    }
    return out
  })
