import { lockPgliteDir } from "../db/pgliteLock.js"
import type { DataDirInUse, DataDirLockFailed } from "../db/pgliteLock.js"
import { Cause, Data, Effect, Exit, Layer, Option, Redacted } from "effect"
import { AppConfig, loadConfig } from "../config.js"
import type { BotfleetConfig, ConfigInvalid } from "../config.js"
import { migrate } from "../db/migrator.js"
import { makePgliteSql, PgliteSqlLive } from "../db/pgliteSql.js"
import { makePgSql, PgSqlLive } from "../db/pgSql.js"
import type { Sql } from "../db/sql.js"
import { makePostgresEventArchive } from "../actors/postgresEventArchive.js"
import { withArchiveReadThrough } from "../events/archiveReadThrough.js"
import { EventLog } from "../events/eventLog.js"
import { makePostgresEventLog } from "../events/postgresEventLog.js"
import { logDependencyHealthHere } from "../health/processHealth.js"
import { makeRedisEventLog } from "../events/redisEventLog.js"
import { openUserKeys, withSealing } from "../privacy/sealingLog.js"
import { jsonLoggerLayer, redactString } from "../logging.js"

/*
 * How every command runs: configuration loaded and validated once, logs as JSON lines on stderr
 * (stdout carries only the command's output), the adapters the mode calls for, and one mapping
 * from failures to exit codes and messages that say what to do next.
 */

import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from "./exitCodes.js"
export { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from "./exitCodes.js"

/** A malformed argument found after parsing (commander's own usage errors are mapped too). */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly detail: string }> {
  override get message() {
    return `${this.detail}\nRun botfleet <command> --help for the usage.`
  }
}

/** The command ran and its answer is "no": a difference found, a check failed. Output already printed. */
export class CommandFailed extends Data.TaggedError("CommandFailed")<{ readonly detail: string }> {
  override get message() {
    return this.detail
  }
}

/**
 * The event log for the configured mode: Redis Streams in production; in embedded mode the
 * Postgres adapter over PGlite in DATA_DIR/pglite, migrated first (PGlite allows one process at a
 * time on its folder: stop `botfleet run` before using the log from the CLI). Either way its
 * streams read through to the events archive, so a trimmed stream reads whole.
 */
export const eventLogLayer = (config: BotfleetConfig): Layer.Layer<EventLog, EmbeddedDatabaseFailed> =>
  Option.match(Option.all({ redis: config.redisUrl, db: config.databaseUrl }), {
    onSome: ({ redis, db }) =>
      Layer.scoped(
        EventLog,
        Effect.gen(function* () {
          const log = yield* Effect.acquireRelease(makeRedisEventLog({ url: Redacted.value(redis), prefix: config.redisPrefix, partitions: config.partitions }), (l) => l.close)
          // the archive is read only for what Redis trimmed; pg connects on the first such read
          const sql = yield* Effect.acquireRelease(
            Effect.sync(() => makePgSql(Redacted.value(db), { max: 2, applicationName: "botfleet-cli-archive" })),
            (s) => Effect.promise(() => s.close())
          )
          const { cache } = openUserKeys(sql, Redacted.value(config.secretKey), { listen: false })
          return withSealing(withArchiveReadThrough(log, makePostgresEventArchive(sql)), cache)
        })
      ),
    onNone: () =>
      Layer.scoped(
        EventLog,
        Effect.gen(function* () {
          yield* Effect.mapError(lockPgliteDir(config.pgliteDir), (cause) => new EmbeddedDatabaseFailed({ dir: config.pgliteDir, cause }))
          const sql = yield* Effect.acquireRelease(
            Effect.tryPromise({ try: () => makePgliteSql({ dataDir: config.pgliteDir }), catch: (cause) => new EmbeddedDatabaseFailed({ dir: config.pgliteDir, cause }) }),
            (sql) => Effect.promise(() => sql.close())
          )
          yield* Effect.tryPromise({ try: () => migrate(sql), catch: (cause) => new EmbeddedDatabaseFailed({ dir: config.pgliteDir, cause }) })
          const { cache } = openUserKeys(sql, Redacted.value(config.secretKey), { listen: false })
          return withSealing(withArchiveReadThrough(makePostgresEventLog({ sql, partitions: config.partitions }), makePostgresEventArchive(sql)), cache)
        })
      )
  })

/** The embedded database could not be opened or migrated. */
export class EmbeddedDatabaseFailed extends Data.TaggedError("EmbeddedDatabaseFailed")<{ readonly dir: string; readonly cause: unknown }> {
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `cannot open the embedded database in ${this.dir}: ${cause}\nIs botfleet already running on this DATA_DIR? Stop it, or point DATA_DIR elsewhere.`
  }
}

/** Postgres for the configured mode: the DATABASE_URL server, or PGlite under DATA_DIR/pglite. */
export const sqlLayer = (config: BotfleetConfig): Layer.Layer<Sql, DataDirInUse | DataDirLockFailed> =>
  Option.match(config.databaseUrl, {
    onSome: (url) => PgSqlLive(Redacted.value(url), { applicationName: "botfleet-cli" }),
    onNone: () => PgliteSqlLive({ dataDir: config.pgliteDir })
  })

/**
 * Postgres as the migration login: MIGRATION_DATABASE_URL when set (production), else the same as
 * `sqlLayer`. For the commands that change the schema or rewrite tables (migrate, rebuild).
 */
export const migrationSqlLayer = (config: BotfleetConfig): Layer.Layer<Sql, DataDirInUse | DataDirLockFailed> =>
  Option.match(config.migrationDatabaseUrl, {
    onSome: (url) => PgSqlLive(Redacted.value(url), { applicationName: "botfleet-cli-migrate" }),
    onNone: () => sqlLayer(config)
  })

const hints: Record<string, string> = {
  LogUnavailable: "Is Redis (or Postgres) running and reachable? Check REDIS_URL / DATABASE_URL, then run the command again.",
  SqlUnavailable: "Is Postgres running and reachable? Check DATABASE_URL, then run the command again.",
  WrongExpectedVersion: "The bot's stream moved on while the command ran (is the bot running?). Run the command again.",
  StaleFence: "Another node took the bot's lease while the command ran. Stop the bot, then run the command again."
}

/** Exit code and text for a failure. */
export const describeFailure = (error: unknown): { readonly code: number; readonly text: string } => {
  const tag = typeof error === "object" && error !== null && "_tag" in error ? String((error as { _tag: unknown })._tag) : ""
  const message = error instanceof Error ? error.message : String(error)
  const code = tag === "UsageError" ? EXIT_USAGE : EXIT_FAILURE
  // versions in neither the hot log nor the archive: no outage, so no "is Redis running?"
  const cause = (error as { cause?: { _tag?: unknown } } | null)?.cause
  const hint = tag === "LogUnavailable" && cause?._tag === "HistoryMissing" ? undefined : hints[tag]
  return { code, text: redactString(hint ? `${message}\n${hint}` : message) }
}

export interface RunOptions {
  /** Environment to read configuration from (tests pass their own). */
  readonly env?: Readonly<Record<string, string | undefined>>
  readonly stderr?: (text: string) => void
}

/**
 * Runs a command's effect with the configuration, the stderr JSON logger, and whatever layer the
 * command builds from the configuration; returns the exit code (printing failures on stderr).
 */
export const runCommand = async <A, E, R extends AppConfig | EventLog | Sql | never>(
  program: Effect.Effect<A, E, R>,
  provide: (config: BotfleetConfig) => Layer.Layer<Exclude<R, AppConfig>, unknown> = () => Layer.empty as never,
  options: RunOptions = {}
): Promise<number> => {
  const stderr = options.stderr ?? ((t: string) => void process.stderr.write(t.endsWith("\n") ? t : t + "\n"))
  const exit = await Effect.runPromiseExit(
    Effect.gen(function* () {
      const config: BotfleetConfig = yield* (loadConfig(options.env) as Effect.Effect<BotfleetConfig, ConfigInvalid>)
      const layer = Layer.merge(Layer.succeed(AppConfig, config), provide(config))
      // a store going away mid-command is logged as one JSON line on stderr, not as raw driver output
      return yield* Effect.scoped(Effect.zipRight(logDependencyHealthHere, program)).pipe(
        Effect.provide(layer as Layer.Layer<R, unknown>),
        Effect.provide(jsonLoggerLayer({ level: config.logLevel, write: (l) => stderr(l) }))
      )
    }).pipe(Effect.scoped)
  )
  if (Exit.isSuccess(exit)) return EXIT_OK
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) {
    const { code, text } = describeFailure(failure.value)
    stderr(text)
    return code
  }
  if (Cause.isInterruptedOnly(exit.cause)) {
    stderr("interrupted")
    return EXIT_FAILURE
  }
  stderr(`botfleet failed unexpectedly (a bug; please report it with this output):\n${redactString(Cause.pretty(exit.cause))}`)
  return EXIT_FAILURE
}
