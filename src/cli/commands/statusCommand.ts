import { Command } from "commander"
import { Clock, Effect } from "effect"
import { AppConfig } from "../../config.js"
import { readBackupHealth } from "../../ops/backups/health.js"
import type { BackupHealth } from "../../ops/backups/health.js"
import { backupTargetFor } from "../../ops/backups/targets.js"
import { projectionLag } from "../../projections/lag.js"
import { openStores } from "../../runtime/stores.js"
import { botRows } from "../bots/botRows.js"
import { printJson, printTable } from "../io.js"
import type { CliIo } from "../io.js"
import { runCommand } from "../runtime.js"
import { printBotRows } from "./botsCommand.js"

type SetExit = (code: number) => void

/**
 * `botfleet status [--json]`: the fleet at a glance, read from the stores (so it works whichever
 * node runs what, and with no node running): per bot its state, version, node, crashes, last error
 * and inbox lag; per log partition the projection lag and the dead letters waiting.
 */
export const statusCommand = (io: CliIo, setExit: SetExit): Command =>
  new Command("status")
    .description("fleet status: per bot state, version, node, crashes, last error, inbox lag; per partition projection lag and dead letters")
    .option("--json", "print as JSON")
    .action(async (opts: { json?: boolean }) => {
      const program = Effect.scoped(
        Effect.gen(function* () {
          const config = yield* AppConfig
          const s = yield* openStores(config)
          const bots = yield* botRows({ log: s.log, inbox: s.inbox, sql: s.sql })
          const lag = yield* projectionLag({ log: s.log, sql: s.sql })
          const partitions = yield* Effect.forEach(lag, (l) =>
            Effect.map(s.log.readDeadLetters(l.partition), (dead) => ({
              partition: l.partition,
              projectionLag: l.waiting,
              projectionLagCapped: l.waitingCapped,
              oldestWaitingAgeMs: l.oldestWaitingAgeMs,
              projectorStalled: l.stalled,
              deadLetters: dead.length
            }))
          )
          const backups = yield* readBackupHealth({ sql: s.sql, log: s.log, config, now: yield* Clock.currentTimeMillis, target: backupTargetFor(config).label })
          if (opts.json) return printJson(io, { mode: config.mode, bots, partitions, backups })
          io.stdout(`mode ${config.mode}, ${bots.length} bot${bots.length === 1 ? "" : "s"} in the fleet directory`)
          printBotRows(io, bots, false)
          io.stdout("")
          printTable(
            io,
            partitions.map((p) => ({
              partition: p.partition,
              "projection lag": `${p.projectionLag}${p.projectionLagCapped ? "+" : ""}`,
              "oldest waiting": p.oldestWaitingAgeMs === null ? "-" : `${Math.round(p.oldestWaitingAgeMs / 1000)}s`,
              projector: p.projectorStalled ? "STALLED" : "ok",
              "dead letters": p.deadLetters
            }))
          )
          io.stdout("")
          for (const line of backupLines(backups)) io.stdout(line)
        })
      )
      setExit(await runCommand(program, undefined, { env: io.env, stderr: io.stderr }))
    })

const run = (r: BackupHealth["backup"]) => (r === null ? "never" : `${r.backup ?? "(unnamed)"} ${r.ok ? "ok" : "FAILED"} at ${r.finishedAt}`)

/** The backups section of `status`: schedule, who takes them, the last runs, and any alert. */
export const backupLines = (h: BackupHealth): ReadonlyArray<string> => [
  `backups: ${h.schedule === null ? "not scheduled (BACKUP_SCHEDULE unset)" : `BACKUP_SCHEDULE ${h.schedule}, drills ${h.drillSchedule ?? "off"}, taken by ${h.scheduler === null ? "no node now" : `node ${h.scheduler}`}`} → ${h.target}`,
  `  last backup: ${run(h.backup)}${h.backup !== null && !h.backup.ok ? `; last good: ${run(h.lastGoodBackup)}` : ""}`,
  `  last verification: ${run(h.verify)}`,
  `  last restore drill: ${run(h.drill)}`,
  ...h.alerts.map((a) => `ALERT: ${a}`)
]
