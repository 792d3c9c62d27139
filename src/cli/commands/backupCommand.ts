import { Command } from "commander"
import { Clock, Effect, Either } from "effect"
import { AppConfig } from "../../config.js"
import type { BotfleetConfig } from "../../config.js"
import { runDrill } from "../../ops/backups/drill.js"
import { recordRun, runsByBackup } from "../../ops/backups/runs.js"
import type { BackupRun } from "../../ops/backups/runs.js"
import { takeBackup } from "../../ops/backups/takeBackup.js"
import { backupTargetFor } from "../../ops/backups/targets.js"
import { verifyStored } from "../../ops/backups/verify.js"
import { openStores } from "../../runtime/stores.js"
import type { NodeStores } from "../../runtime/stores.js"
import { MANIFEST_FILE, parseManifest } from "../backup/format.pure.js"
import { writeBackup } from "../backup/backup.js"
import { restoreBackup } from "../backup/restore.js"
import { printJson, printTable } from "../io.js"
import { makeProgress } from "../progress.js"
import type { CliIo } from "../io.js"
import { CommandFailed, runCommand } from "../runtime.js"

type SetExit = (code: number) => void

/*
 * `botfleet backup <dir>` and `botfleet restore <dir>` (docs/cli.md, "Backup and restore"). Both
 * open the mode's stores the way a node does (one PGlite in embedded mode holds the log and the
 * tables; Redis + Postgres in production).
 */

/** Runs `body` with the mode's stores and the configured backup target. */
const withTarget = <A, E>(body: (s: NodeStores, config: BotfleetConfig, target: ReturnType<typeof backupTargetFor>) => Effect.Effect<A, E>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const config = yield* AppConfig
      const stores = yield* openStores(config)
      return yield* body(stores, config, backupTargetFor(config))
    })
  )

const cliNode = (config: BotfleetConfig) => `cli:${config.nodeId}`

const runText = (r: BackupRun | undefined) => (r === undefined ? "-" : `${r.ok ? "ok" : "FAILED"} ${r.finishedAt}`)

/**
 * `botfleet backup <dir>`: the event log (archive + Redis tail) and the fleet directory into a
 * folder; `backup now | list | verify | drill`: the scheduled backups in BACKUP_TARGET
 * (docs/operations-config.md).
 */
export const backupCommand = (io: CliIo, setExit: SetExit): Command => {
  const run = async (program: Effect.Effect<unknown, unknown, AppConfig>) => setExit(await runCommand(program, undefined, { env: io.env, stderr: io.stderr }))
  const command = new Command("backup")
    // `backup list --json`: the subcommand's own options, not the parent's
    .enablePositionalOptions()
    .description("back up the event log (events archive + Redis tail), the fleet directory and the REST API's owners and tokens (hashed) into a new folder, with checksums; or manage the backups in BACKUP_TARGET (now, list, verify, drill)")
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

  command.addCommand(
    new Command("now")
      .description("take a backup into BACKUP_TARGET now, as the schedule does: verified after writing, then retention (BACKUP_KEEP)")
      .option("--json", "print the outcome as JSON")
      .action(async (opts: { json?: boolean }) =>
        run(
          withTarget((s, config, target) =>
            Effect.gen(function* () {
              const at = yield* Clock.currentTimeMillis
              const progress = makeProgress(io, opts.json !== true)
              const outcome = yield* takeBackup({ target, log: s.log, sql: s.sql, nodeId: cliNode(config), keep: config.backupKeep, at, onProgress: (d, t) => progress.update("backup", d, t) }).pipe(
                Effect.ensuring(Effect.sync(() => progress.stop()))
              )
              if (opts.json) printJson(io, { target: target.label, ...outcome })
              else if (outcome.ok) {
                io.stdout(`backup ${outcome.name} written to ${target.label} and verified: ${outcome.events} events, ${outcome.bytes} bytes`)
                if (outcome.deleted.length > 0) io.stdout(`retention (BACKUP_KEEP=${config.backupKeep}) deleted ${outcome.deleted.join(", ")}`)
              }
              if (!outcome.ok) return yield* new CommandFailed({ detail: `backup ${outcome.name ?? ""} FAILED: ${outcome.problems.join("; ")}` })
            })
          )
        )
      )
  )

  command.addCommand(
    new Command("list")
      .description("the backups in BACKUP_TARGET: finished or not, events, size, and the last verification and restore drill of each")
      .option("--json", "print as JSON")
      .action(async (opts: { json?: boolean }) =>
        run(
          withTarget((s, _config, target) =>
            Effect.gen(function* () {
              const entries = yield* target.list
              const runs = yield* runsByBackup(s.sql, entries.map((e) => e.name))
              const rows = []
              for (const e of entries) {
                const manifest = e.finished ? yield* Effect.either(readManifest(target, e.name)) : null
                const m = manifest !== null && Either.isRight(manifest) ? manifest.right : null
                const r = runs.get(e.name) ?? {}
                rows.push({
                  name: e.name,
                  finished: e.finished,
                  createdAt: m?.createdAt ?? null,
                  bots: m?.bots ?? null,
                  events: m?.events ?? null,
                  bytes: m ? m.files.reduce((n, f) => n + f.bytes, 0) : null,
                  written: r.backup ?? null,
                  verified: r.verify ?? null,
                  drilled: r.drill ?? null
                })
              }
              if (opts.json) return printJson(io, { target: target.label, backups: rows })
              if (rows.length === 0) return io.stdout(`no backups in ${target.label}`)
              printTable(
                io,
                rows.map((r) => ({
                  backup: r.name,
                  state: r.finished ? "finished" : "UNFINISHED",
                  events: r.events ?? "-",
                  bytes: r.bytes ?? "-",
                  "written+verified": runText(r.written ?? undefined),
                  "verified again": runText(r.verified ?? undefined),
                  "restore drill": runText(r.drilled ?? undefined)
                }))
              )
              io.stdout(`${rows.length} backup${rows.length === 1 ? "" : "s"} in ${target.label}`)
            })
          )
        )
      )
  )

  command.addCommand(
    new Command("verify")
      .description("read a backup back from BACKUP_TARGET and check every file against its manifest checksums (default: the newest)")
      .argument("[name]", "the backup (botfleet backup list)")
      .option("--json", "print the outcome as JSON")
      .action(async (name: string | undefined, opts: { json?: boolean }) =>
        run(
          withTarget((s, config, target) =>
            Effect.gen(function* () {
              const startedAt = yield* Clock.currentTimeMillis
              const chosen = name ?? (yield* target.list).at(-1)?.name
              if (chosen === undefined) return yield* new CommandFailed({ detail: `no backups in ${target.label}` })
              const v = yield* verifyStored(target, chosen)
              const finishedAt = yield* Clock.currentTimeMillis
              yield* recordRun(s.sql, {
                kind: "verify", backup: chosen, target: target.label, nodeId: cliNode(config), startedAt: new Date(startedAt).toISOString(),
                finishedAt: new Date(finishedAt).toISOString(), ok: v.ok, events: v.manifest?.events ?? null, bytes: v.bytes, detail: v.ok ? {} : { problems: v.problems }
              })
              if (!v.ok) yield* Effect.logError(`backup ${chosen} FAILED verification: ${v.problems.join("; ")}`).pipe(Effect.annotateLogs({ alert: "verify", backup: chosen }))
              if (opts.json) printJson(io, { name: chosen, ok: v.ok, problems: v.problems, bytes: v.bytes })
              else if (v.ok) io.stdout(`backup ${chosen}: every file matches its manifest (${v.bytes} bytes read back)`)
              if (!v.ok) return yield* new CommandFailed({ detail: `backup ${chosen} FAILED verification:\n  ${v.problems.join("\n  ")}` })
            })
          )
        )
      )
  )

  command.addCommand(
    new Command("drill")
      .description("restore a backup (default: the newest finished one) into a scratch database and key prefix and compare its projections with the live ones, row by row")
      .argument("[name]", "the backup (botfleet backup list)")
      .option("--json", "print the outcome as JSON")
      .action(async (name: string | undefined, opts: { json?: boolean }) =>
        run(
          withTarget((s, config, target) =>
            Effect.gen(function* () {
              const progress = makeProgress(io, opts.json !== true)
              const outcome = yield* runDrill({
                target, config, liveSql: s.sql, nodeId: cliNode(config), ...(name !== undefined ? { name } : {}),
                onProgress: (phase, d, t) => progress.update(phase, d, t)
              }).pipe(Effect.ensuring(Effect.sync(() => progress.stop())))
              if (opts.json) printJson(io, outcome)
              else if (outcome.ok) {
                const c = outcome.comparison!
                io.stdout(`restore drill of ${outcome.backup}: ${outcome.events} events restored; ${c.rowsCompared} projection rows equal to the live ones (${c.settledBots} bots in full, ${c.partialBots} up to the backup)`)
              } else if (outcome.comparison) {
                printTable(io, outcome.comparison.tables.map((t) => ({ table: t.table, "only live": t.onlyLive, "only backup": t.onlyBackup, differing: t.differing })))
                for (const e of outcome.comparison.examples) io.stdout(`  ${e}`)
              }
              if (!outcome.ok) return yield* new CommandFailed({ detail: `restore drill of ${outcome.backup ?? "(none)"} FAILED: ${outcome.error ?? "the restored projections differ from the live ones"}` })
            })
          )
        )
      )
  )
  return command
}

const readManifest = (target: ReturnType<typeof backupTargetFor>, name: string) =>
  Effect.gen(function* () {
    const chunks = yield* target.read(name, MANIFEST_FILE)
    const text = yield* Effect.tryPromise(async () => {
      const parts: Array<Buffer> = []
      for await (const c of chunks) parts.push(Buffer.from(c))
      return Buffer.concat(parts).toString("utf8")
    })
    return yield* Either.match(parseManifest(text), { onLeft: (e) => Effect.fail(new Error(e)), onRight: Effect.succeed })
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
            `restored ${report.events} events of ${report.bots} bots, ${report.fleetBots} fleet directory rows and ${report.apiOwners} API owners with ${report.apiTokens} tokens ` +
              `from ${dir} (backup of ${report.createdAt}); projections rebuilt from ${report.projected} events`
          )
          if (report.deadLettered > 0) io.stdout(`WARNING: ${report.deadLettered} events were refused by the projections: see botfleet dlq list`)
        })
      )
      setExit(await runCommand(program, undefined, { env: io.env, stderr: io.stderr }))
    })
