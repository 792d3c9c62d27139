import { Command } from "commander"
import { Effect } from "effect"
import { AppConfig } from "../../config.js"
import { openStores } from "../../runtime/stores.js"
import { writeBackup } from "../backup/backup.js"
import { restoreBackup } from "../backup/restore.js"
import { makeProgress, printJson, printTable } from "../io.js"
import type { CliIo } from "../io.js"
import { runCommand } from "../runtime.js"

type SetExit = (code: number) => void

/*
 * `botfleet backup <dir>` and `botfleet restore <dir>` (docs/cli.md, "Backup and restore"). Both
 * open the mode's stores the way a node does (one PGlite in embedded mode holds the log and the
 * tables; Redis + Postgres in production).
 */

/** `botfleet backup <dir> [--json]`: the event log (archive + Redis tail) and the fleet directory. */
export const backupCommand = (io: CliIo, setExit: SetExit): Command =>
  new Command("backup")
    .description("back up the event log (events archive + Redis tail) and the fleet directory into a new folder, with checksums")
    .argument("<dir>", "folder to write (created; must be empty)")
    .option("--json", "print the manifest as JSON")
    .action(async (dir: string, opts: { json?: boolean }) => {
      const progress = makeProgress(io, opts.json !== true)
      const program = Effect.scoped(
        Effect.gen(function* () {
          const stores = yield* openStores(yield* AppConfig)
          const manifest = yield* writeBackup({
            log: stores.log,
            sql: stores.sql,
            dir,
            now: () => new Date(),
            onProgress: (d, t) => progress.update("backup", d, t)
          }).pipe(Effect.ensuring(Effect.sync(() => progress.stop())))
          if (opts.json) return printJson(io, { dir, ...manifest })
          printTable(io, manifest.files.map((f) => ({ file: f.file, count: f.count, bytes: f.bytes, sha256: f.sha256.slice(0, 12) })))
          io.stdout(`backed up ${manifest.events} events of ${manifest.bots} bots to ${dir}`)
          if (manifest.undecodable > 0) io.stdout(`WARNING: ${manifest.undecodable} log entries no longer decode and were left out`)
          io.stdout(`note: ${manifest.secrets}`)
        })
      )
      setExit(await runCommand(program, undefined, { env: io.env, stderr: io.stderr }))
    })

/** `botfleet restore <dir> [--json]`: verify, append every stream back, restore the directory, project. */
export const restoreCommand = (io: CliIo, setExit: SetExit): Command =>
  new Command("restore")
    .description("restore a backup onto an empty log and database (verified first), then rebuild the projections from it")
    .argument("<dir>", "folder written by botfleet backup")
    .option("--json", "print the report as JSON")
    .action(async (dir: string, opts: { json?: boolean }) => {
      const progress = makeProgress(io, opts.json !== true)
      const program = Effect.scoped(
        Effect.gen(function* () {
          const config = yield* AppConfig
          const stores = yield* openStores(config)
          const report = yield* restoreBackup({
            log: stores.log,
            sql: stores.sql,
            dir,
            nodeId: `restore-${config.nodeId}`,
            onProgress: (phase, d, t) => progress.update(phase, d, t)
          }).pipe(Effect.ensuring(Effect.sync(() => progress.stop())))
          if (opts.json) return printJson(io, { dir, ...report })
          io.stdout(
            `restored ${report.events} events of ${report.bots} bots and ${report.fleetBots} fleet directory rows from ${dir} (backup of ${report.createdAt}); ` +
              `projections rebuilt from ${report.projected} events`
          )
          if (report.deadLettered > 0) io.stdout(`WARNING: ${report.deadLettered} events were refused by the projections: see botfleet dlq list`)
        })
      )
      setExit(await runCommand(program, undefined, { env: io.env, stderr: io.stderr }))
    })
