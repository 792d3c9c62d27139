import { Clock, Duration, Effect, Option } from "effect"
import type { Scope } from "effect"
import { Cron } from "croner"
import type { Lease } from "../../events/eventLog.js"
import type { LiveSettings } from "../../runtime/liveSettings.js"
import type { NodeStores } from "../../runtime/stores.js"
import { runDrill } from "./drill.js"
import { takeBackup } from "./takeBackup.js"
import { backupTargetFor } from "./targets.js"

/** The lease that makes one node of the fleet the one taking backups and drills. */
export const BACKUP_LEASE = "_backups"

/**
 * Sleeps until each time `pattern` (cron, UTC, via croner) names, then runs `job` with that time;
 * the next time is computed after the job, so a job longer than the interval skips the times it
 * overran instead of piling up.
 */
export const onSchedule = <E, R>(pattern: string, job: (at: number) => Effect.Effect<unknown, E, R>): Effect.Effect<void, E, R> =>
  Effect.gen(function* () {
    const cron = new Cron(pattern, { paused: true, timezone: "UTC" })
    for (;;) {
      const now = yield* Clock.currentTimeMillis
      const next = cron.nextRun(new Date(now))
      if (next === null) return
      yield* Effect.sleep(Duration.millis(Math.max(0, next.getTime() - now)))
      yield* job(next.getTime())
    }
  })

/**
 * Scheduled backups and restore drills, when BACKUP_SCHEDULE is set: every node competes for the
 * BACKUP_LEASE (as for a bot's lease: TTL, renewals, fencing) and only its holder runs the
 * schedules, one job at a time; when the holder stops or dies another node takes the lease and
 * the schedules go on there. BACKUP_KEEP is read at each backup (a live setting). Runs in the
 * node's scope; closing it stops the schedules and hands the lease back.
 */
export const runBackupSchedule = (o: { readonly settings: LiveSettings; readonly stores: NodeStores; readonly nodeId: string }): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const start = o.settings.current()
    if (Option.isNone(start.backupSchedule)) return
    const backupPattern = start.backupSchedule.value
    const drillPattern = Option.getOrNull(start.backupDrillSchedule)
    const target = backupTargetFor(start)
    const log = o.stores.log
    const ttl = start.leaseTtlMs
    const lock = yield* Effect.makeSemaphore(1)
    const backup = (at: number) =>
      lock.withPermits(1)(takeBackup({ target, log, sql: o.stores.sql, nodeId: o.nodeId, keep: o.settings.current().backupKeep, at }))
    const drill = () => lock.withPermits(1)(runDrill({ target, config: o.settings.current(), liveSql: o.stores.sql, nodeId: o.nodeId }))
    const jobs = Effect.all([onSchedule(backupPattern, backup), ...(drillPattern === null ? [] : [onSchedule(drillPattern, drill)])], { concurrency: "unbounded", discard: true })

    /** Holds the lease until it is lost (renewing it), then ends. */
    const keep = (first: Lease) =>
      Effect.gen(function* () {
        let lease = first
        for (;;) {
          yield* Effect.sleep(Duration.millis(start.leaseRenewMs))
          const renewed = yield* Effect.either(log.renewLease(lease, ttl))
          if (renewed._tag === "Right") {
            if (renewed.right === null) return
            lease = renewed.right
          }
        }
      })

    const lead = Effect.gen(function* () {
      for (;;) {
        const lease = yield* log.acquireLease(BACKUP_LEASE, o.nodeId, ttl).pipe(Effect.orElseSucceed(() => null))
        if (lease === null) {
          yield* Effect.sleep(Duration.millis(ttl / 2))
          continue
        }
        yield* Effect.logInfo(`this node takes the fleet's backups (BACKUP_SCHEDULE ${backupPattern}${drillPattern ? `, drills ${drillPattern}` : ""}) into ${target.label}`)
        yield* Effect.raceFirst(keep(lease), jobs).pipe(Effect.ensuring(Effect.ignore(log.releaseLease(lease))))
        yield* Effect.logWarning("this node lost the backup lease: another node takes the fleet's backups now")
      }
    })
    yield* Effect.forkScoped(lead)
  })
