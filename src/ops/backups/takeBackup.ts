import { Clock, Effect, Either } from "effect"
import { writeBackup } from "../../cli/backup/backup.js"
import type { SqlClient } from "../../db/sql.js"
import type { EventLogService } from "../../events/eventLog.js"
import { backupName, toDelete } from "./retention.pure.js"
import { recordRun } from "./runs.js"
import type { BackupRun } from "./runs.js"
import type { BackupTarget } from "./target.js"
import { verifyStored } from "./verify.js"

export interface BackupOutcome {
  readonly name: string | null
  readonly ok: boolean
  readonly events: number
  readonly bytes: number
  /** Why it failed (writing) or what verification found; empty when ok. */
  readonly problems: ReadonlyArray<string>
  /** Older backups retention deleted after this one was verified. */
  readonly deleted: ReadonlyArray<string>
}

const iso = (ms: number) => new Date(ms).toISOString()

/**
 * One backup into the target, as the schedule (and `botfleet backup now`) takes it: named after
 * `at`, written with the manifest last, then read back and verified against the manifest
 * checksums, recorded in backup_runs, and — only when verified — retention deletes what is beyond
 * the newest `keep` (so a bad backup never costs a good one). A failure is an alert: an error log
 * line (`alert: "backup"`) and a failed run that `botfleet status` and the metrics show.
 */
export const takeBackup = (o: {
  readonly target: BackupTarget
  readonly log: EventLogService
  readonly sql: SqlClient
  readonly nodeId: string
  readonly keep: number
  /** The scheduled time the backup is named after (epoch ms). */
  readonly at: number
  /** Partitions written so far (the CLI draws a progress bar). */
  readonly onProgress?: (done: number, total: number) => void
}): Effect.Effect<BackupOutcome> =>
  Effect.gen(function* () {
    const startedAt = yield* Clock.currentTimeMillis
    const existing = yield* Effect.either(o.target.list)
    const name = Either.isRight(existing) ? backupName(iso(o.at), new Set(existing.right.map((e) => e.name))) : null
    let outcome: BackupOutcome
    if (name === null) {
      outcome = { name, ok: false, events: 0, bytes: 0, problems: [Either.isLeft(existing) ? existing.left.message : "no name"], deleted: [] }
    } else {
      const written = yield* Effect.either(
        o.target.store(name, (dir) => writeBackup({ log: o.log, sql: o.sql, dir, now: () => new Date(), ...(o.onProgress ? { onProgress: o.onProgress } : {}) }))
      )
      if (Either.isLeft(written)) {
        outcome = { name, ok: false, events: 0, bytes: 0, problems: [written.left.message], deleted: [] }
      } else {
        const verified = yield* verifyStored(o.target, name)
        outcome = { name, ok: verified.ok, events: written.right.events, bytes: verified.bytes, problems: verified.problems, deleted: [] }
      }
    }
    // recorded and retained together: a stop right after the record must not leave the retention undone
    const done = outcome
    return yield* Effect.uninterruptible(
      Effect.gen(function* () {
        let outcome = done
        const finishedAt = yield* Clock.currentTimeMillis
        const run: BackupRun = {
          kind: "backup", backup: outcome.name, target: o.target.label, nodeId: o.nodeId, startedAt: iso(startedAt), finishedAt: iso(finishedAt),
          ok: outcome.ok, events: outcome.events, bytes: outcome.bytes, detail: outcome.ok ? {} : { problems: outcome.problems }
        }
        const recorded = yield* Effect.either(recordRun(o.sql, run))
        const notes = { alert: "backup", backup: outcome.name, target: o.target.label }
        if (!outcome.ok) {
          yield* Effect.logError(`backup ${outcome.name ?? "(unnamed)"} FAILED: ${outcome.problems.join("; ")}`).pipe(Effect.annotateLogs(notes))
        } else {
          yield* Effect.logInfo(`backup ${outcome.name} written and verified: ${outcome.events} events, ${outcome.bytes} bytes`).pipe(Effect.annotateLogs({ backup: outcome.name, target: o.target.label }))
          outcome = { ...outcome, deleted: yield* applyRetention(o.target, o.keep) }
        }
        if (Either.isLeft(recorded)) yield* Effect.logError(`backup ${outcome.name}: ${recorded.left.message}`).pipe(Effect.annotateLogs(notes))
        return outcome
      })
    )
  })

/** Deletes what retention says to (see toDelete); a deletion that fails is logged and retried next time. */
export const applyRetention = (target: BackupTarget, keep: number): Effect.Effect<ReadonlyArray<string>> =>
  Effect.gen(function* () {
    const listed = yield* Effect.either(target.list)
    if (Either.isLeft(listed)) {
      yield* Effect.logWarning(`backup retention: ${listed.left.message}`)
      return []
    }
    const deleted: Array<string> = []
    for (const name of toDelete(listed.right, keep)) {
      const r = yield* Effect.either(target.remove(name))
      if (Either.isRight(r)) deleted.push(name)
      else yield* Effect.logWarning(`backup retention: cannot delete ${name}: ${r.left.message}`)
    }
    if (deleted.length > 0) yield* Effect.logInfo(`backup retention (BACKUP_KEEP=${keep}) deleted ${deleted.join(", ")}`)
    return deleted
  })
