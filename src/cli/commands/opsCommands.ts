import { Command } from "commander"
import { Data, Effect } from "effect"
import { AppConfig, describeConfig } from "../../config.js"
import { migrate } from "../../db/migrator.js"
import { Sql } from "../../db/sql.js"
import { EventLog } from "../../events/eventLog.js"
import type { DeadLetter } from "../../events/eventLog.js"
import { printJson, printTable } from "../io.js"
import type { CliIo } from "../io.js"
import { eventLogLayer, runCommand, sqlLayer } from "../runtime.js"

type SetExit = (code: number) => void

/** `botfleet config [--json]`: the effective configuration, secrets redacted. */
export const configCommand = (io: CliIo, setExit: SetExit): Command =>
  new Command("config")
    .description("print the effective configuration (environment + BOTFLEET_CONFIG file), secrets redacted")
    .option("--json", "print as JSON")
    .action(async (opts: { json?: boolean }) => {
      const program = Effect.map(AppConfig, (c) => {
        const shown = describeConfig(c)
        if (opts.json) printJson(io, shown)
        else printTable(io, Object.entries(shown).map(([setting, value]) => ({ setting, value })))
      })
      setExit(await runCommand(program, undefined, { env: io.env, stderr: io.stderr }))
    })

export class DatabaseUnavailable extends Data.TaggedError("DatabaseUnavailable")<{ readonly cause: unknown }> {
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `cannot reach the database: ${cause}\nIs Postgres running? Check DATABASE_URL (unset it, and REDIS_URL, for the embedded database under DATA_DIR).`
  }
}

const isTagged = (e: unknown): e is { readonly _tag: string } => typeof e === "object" && e !== null && "_tag" in e

/** `botfleet migrate [--json]`: applies the sql/ migrations not yet applied, each once, checksummed. */
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
      setExit(await runCommand(program, sqlLayer, { env: io.env, stderr: io.stderr }))
    })

/** `botfleet dlq list [--json]`: dead-lettered log entries of every partition, with their reasons. */
export const dlqCommand = (io: CliIo, setExit: SetExit): Command =>
  new Command("dlq").description("dead-letter entries (log entries a consumer could not handle)").addCommand(
    new Command("list")
      .description("list dead-letter entries of every partition with their reasons")
      .option("--json", "print as JSON (with the raw entry fields)")
      .action(async (opts: { json?: boolean }) => {
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
        setExit(await runCommand(program, eventLogLayer, { env: io.env, stderr: io.stderr }))
      })
  )
