import { eventLogLayerFor } from "../hosted.js"
import { Command } from "commander"
import { Data, Effect, Redacted } from "effect"
import { openUserKeys } from "../../privacy/sealingLog.js"
import { AppConfig } from "../../config.js"
import { migrate } from "../../db/migrator.js"
import { Sql } from "../../db/sql.js"
import { EventLog } from "../../events/eventLog.js"
import { PROJECTIONS } from "../../projections/mapping/rows.js"
import type { ProjectionName } from "../../projections/mapping/rows.js"
import { rebuild } from "../../projections/rebuild.js"
import type { DeadLetter } from "../../events/eventLog.js"
import { printJson, printTable } from "../io.js"
import { makeProgress } from "../progress.js"
import { listInboxDeadLetters, openInboxStores } from "./dlqInbox.js"
import type { CliIo } from "../io.js"
import { CommandFailed, migrationSqlLayer, runCommand, UsageError } from "../runtime.js"

/** The archive is the source of every rebuild, so it is not offered as something to rebuild. */
const REBUILDABLE = PROJECTIONS.filter((p) => p !== "archive")

type SetExit = (code: number) => void

export class DatabaseUnavailable extends Data.TaggedError("DatabaseUnavailable")<{ readonly cause: unknown }> {
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `cannot reach the database: ${cause}\nIs Postgres running? Check DATABASE_URL (unset it, and REDIS_URL, for the embedded database under DATA_DIR).`
  }
}

const isTagged = (e: unknown): e is { readonly _tag: string } => typeof e === "object" && e !== null && "_tag" in e

/**
 * `botfleet migrate [--json]`: applies the sql/ migrations not yet applied, each once, checksummed,
 * as MIGRATION_DATABASE_URL's login when set.
 */
export const migrateCommand = (io: CliIo, setExit: SetExit): Command =>
  new Command("migrate")
    .description("apply the database migrations (sql/) not applied yet; refuses edited ones")
    .option("--json", "print what was applied as JSON")
    .action(async (opts: { json?: boolean }) => {
      const program = Effect.gen(function* () {
        const sql = yield* Sql
        const applied = yield* Effect.tryPromise({
          try: () => migrate(sql),
          catch: (e) => (isTagged(e) ? (e as unknown as DatabaseUnavailable) : new DatabaseUnavailable({ cause: e }))
        })
        if (opts.json) printJson(io, { applied })
        else if (applied.length === 0) io.stdout("the database is up to date: no migration to apply")
        else {
          printTable(io, applied.map((m) => ({ version: m.version, name: m.name, sha256: m.checksum.slice(0, 12) })))
          io.stdout(`applied ${applied.length} migration${applied.length === 1 ? "" : "s"}`)
        }
      })
      setExit(await runCommand(program, migrationSqlLayer, { env: io.env, stderr: io.stderr }))
    })

/**
 * `botfleet dlq list [--json]`: dead-lettered log entries of every partition, with their reasons;
 * `--bot <bot>`: that bot's inbox dead letters (updates its handler threw on) instead.
 */
export const dlqCommand = (io: CliIo, setExit: SetExit): Command =>
  new Command("dlq").description("dead-letter entries (log entries a consumer could not handle)").addCommand(
    new Command("list")
      .description("list dead-letter entries of every partition with their reasons")
      .option("--json", "print as JSON (with the raw entry fields)")
      .option("--bot <bot>", "list the bot's inbox dead letters (updates its handler threw on) instead")
      .action(async (opts: { json?: boolean; bot?: string }) => {
        const bot = opts.bot
        if (bot !== undefined) {
          const inboxProgram = Effect.scoped(Effect.flatMap(Effect.flatMap(AppConfig, openInboxStores), (s) => listInboxDeadLetters(io, s, bot, opts.json === true)))
          return setExit(await runCommand(inboxProgram, undefined, { env: io.env, stderr: io.stderr }))
        }
        const program = Effect.gen(function* () {
          const log = yield* EventLog
          const all: Array<DeadLetter> = []
          for (let p = 0; p < log.partitions; p++) all.push(...(yield* log.readDeadLetters(p)))
          if (opts.json) return printJson(io, all)
          if (all.length === 0) return io.stdout("no dead-letter entries")
          printTable(
            io,
            all.map((d) => ({ partition: d.partition, id: d.id, group: d.group, position: d.position, deliveries: d.deliveryCount, at: d.at, reason: d.reason.slice(0, 80) }))
          )
        })
        setExit(await runCommand(program, eventLogLayerFor(io), { env: io.env, stderr: io.stderr }))
      })
  )

/**
 * `botfleet rebuild <projection> [--compare-only] [--json]`: replays the events archive into shadow
 * tables, compares them with the live ones and (unless --compare-only) swaps them in. With
 * --compare-only, a difference exits 1.
 */
export const rebuildCommand = (io: CliIo, setExit: SetExit): Command =>
  new Command("rebuild")
    .description(`rebuild a projection from the events archive and compare it with the live one (${REBUILDABLE.join(", ")})`)
    .argument("<projection>", "projection name")
    .option("--compare-only", "build and compare, but keep the live tables")
    .option("--json", "print the report as JSON")
    .action(async (projection: string, opts: { compareOnly?: boolean; json?: boolean }) => {
      const progress = makeProgress(io, opts.json !== true)
      const program = Effect.gen(function* () {
        if (!(REBUILDABLE as ReadonlyArray<string>).includes(projection)) {
          return yield* new UsageError({ detail: `no projection named ${JSON.stringify(projection)} to rebuild: choose one of ${REBUILDABLE.join(", ")}` })
        }
        const sql = yield* Sql
        const config = yield* AppConfig
        const { cache } = openUserKeys(sql, Redacted.value(config.secretKey), { listen: false })
        const report = yield* rebuild({
          sql,
          keyCache: cache,
          projection: projection as ProjectionName,
          swap: opts.compareOnly !== true,
          onProgress: (p) => progress.update(p.phase, p.done, p.total)
        }).pipe(Effect.ensuring(Effect.sync(() => progress.stop())))
        if (opts.json) printJson(io, report)
        else {
          printTable(io, report.tables.map((t) => ({ table: t.table, live: t.liveRows, rebuilt: t.rebuiltRows, "only live": t.onlyLive, "only rebuilt": t.onlyRebuilt })))
          io.stdout(
            `${report.events} archived events replayed${report.undecodable > 0 ? ` (${report.undecodable} no longer decode and were skipped)` : ""}; ` +
              `${report.identical ? "the rebuild equals the live tables" : "the rebuild DIFFERS from the live tables"}` +
              `${report.swapped ? "; rebuilt tables swapped in" : ""}`
          )
        }
        if (!report.swapped && !report.identical) return yield* new CommandFailed({ detail: `the rebuilt ${projection} projection differs from the live one` })
      })
      setExit(await runCommand(program, migrationSqlLayer, { env: io.env, stderr: io.stderr }))
    })
