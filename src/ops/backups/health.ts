import { Cron } from "croner"
import { Effect, Option } from "effect"
import type { Registry } from "prom-client"
import { Gauge } from "prom-client"
import type { BotfleetConfig } from "../../config.js"
import type { SqlClient } from "../../db/sql.js"
import type { EventLogService } from "../../events/eventLog.js"
import { latestRuns } from "./runs.js"
import type { BackupRun, LatestRuns } from "./runs.js"
import { BACKUP_LEASE } from "./scheduler.js"

/*
 * The backups' health in one place: what `botfleet status` prints and what the metrics export.
 * A failed backup, verification or drill, or no good backup for longer than two schedule
 * intervals, is an alert.
 */

export interface BackupHealth extends LatestRuns {
  readonly target: string
  readonly schedule: string | null
  readonly drillSchedule: string | null
  /** The node holding the backup lease (the one taking backups now); null: none. */
  readonly scheduler: string | null
  /** Why ops must look, one sentence each; empty when all is well. */
  readonly alerts: ReadonlyArray<string>
}

const failed = (what: string, r: BackupRun | null) =>
  r !== null && !r.ok ? [`the last ${what}${r.backup ? ` (${r.backup})` : ""} FAILED at ${r.finishedAt}: ${summary(r)}`] : []

const summary = (r: BackupRun): string => {
  const d = r.detail as { problems?: ReadonlyArray<string>; error?: string; examples?: ReadonlyArray<string> }
  return (d.problems?.[0] ?? d.error ?? d.examples?.[0] ?? "see botfleet backup list").slice(0, 200)
}

/** Two schedule intervals (from the cron's next two times): how long without a good backup is late. */
const lateAfterMs = (schedule: string, now: number): number => {
  const cron = new Cron(schedule, { paused: true, timezone: "UTC" })
  const [a, b] = cron.nextRuns(2, new Date(now))
  return a && b ? 2 * (b.getTime() - a.getTime()) : Number.POSITIVE_INFINITY
}

/** Reads the backups' health (runs table + backup lease). */
export const readBackupHealth = (o: { readonly sql: SqlClient; readonly log: EventLogService; readonly config: BotfleetConfig; readonly now: number; readonly target: string }) =>
  Effect.gen(function* () {
    const runs = yield* latestRuns(o.sql)
    const lease = yield* o.log.readLease(BACKUP_LEASE).pipe(Effect.orElseSucceed(() => null))
    const schedule = Option.getOrNull(o.config.backupSchedule)
    const alerts = [...failed("backup", runs.backup), ...failed("verification", runs.verify), ...failed("restore drill", runs.drill)]
    if (schedule !== null) {
      const good = runs.lastGoodBackup ? Date.parse(runs.lastGoodBackup.finishedAt) : null
      if (good === null || o.now - good > lateAfterMs(schedule, o.now)) {
        if (good !== null || runs.backup !== null) alerts.push(`no good backup since ${runs.lastGoodBackup?.finishedAt ?? "ever"} (BACKUP_SCHEDULE ${schedule})`)
      }
    }
    return {
      ...runs,
      target: o.target,
      schedule,
      drillSchedule: Option.getOrNull(o.config.backupDrillSchedule),
      scheduler: lease !== null && lease.expiresAt > o.now ? lease.nodeId : null,
      alerts
    } satisfies BackupHealth
  })

const seconds = (iso: string | undefined) => (iso === undefined ? 0 : Date.parse(iso) / 1000)

/**
 * The backup metrics, for the node's prom-client registry (the lead wires it where the metrics
 * endpoint is served): each scrape reads the health once.
 * - botfleet_backup_last_success_timestamp_seconds, botfleet_restore_drill_last_success_timestamp_seconds (0: never)
 * - botfleet_backup_last_run_ok, botfleet_backup_verify_last_run_ok, botfleet_restore_drill_last_run_ok (1 ok, 0 failed, absent: never ran)
 * - botfleet_backup_alerts: alerts in force (0 when all is well) — alert on > 0
 */
export const registerBackupMetrics = (registry: Registry, read: () => Promise<BackupHealth>): void => {
  let pending: Promise<BackupHealth> | null = null
  // one read per scrape, shared by the gauges that collect together
  const health = () => (pending ??= read().finally(() => setTimeout(() => (pending = null), 0)))
  const gauge = (name: string, help: string, value: (h: BackupHealth) => number | null) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const v = value(await health())
        this.reset()
        if (v !== null) this.set(v)
      }
    })
  gauge("botfleet_backup_last_success_timestamp_seconds", "When the last verified backup finished (0: never)", (h) => seconds(h.lastGoodBackup?.finishedAt))
  gauge("botfleet_restore_drill_last_success_timestamp_seconds", "When the last successful restore drill finished (0: never)", (h) => seconds(h.lastGoodDrill?.finishedAt))
  gauge("botfleet_backup_last_run_ok", "1 when the last backup was written and verified, 0 when it failed", (h) => (h.backup ? Number(h.backup.ok) : null))
  gauge("botfleet_backup_verify_last_run_ok", "1 when the last verification of a stored backup passed, 0 when it failed", (h) => (h.verify ? Number(h.verify.ok) : null))
  gauge("botfleet_restore_drill_last_run_ok", "1 when the last restore drill restored projections equal to the live ones, 0 when not", (h) => (h.drill ? Number(h.drill.ok) : null))
  gauge("botfleet_backup_alerts", "Backup alerts in force: failed backup, verification or drill, or a late backup", (h) => h.alerts.length)
}
