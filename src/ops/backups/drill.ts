import { randomBytes } from "node:crypto"
import { openRedis, scanKeys, unlinkKeys } from "../../health/redisHealth.js"
import { readFile, rm } from "node:fs/promises"
import { join } from "node:path"
import { Clock, Effect, Either, Option, Redacted } from "effect"
import type { Scope } from "effect"
import { restoreBackup } from "../../cli/backup/restore.js"
import type { BotfleetConfig } from "../../config.js"
import { migrate } from "../../db/migrator.js"
import { makePgliteSql } from "../../db/pgliteSql.js"
import { makePgSql } from "../../db/pgSql.js"
import type { SqlClient } from "../../db/sql.js"
import type { EventLogService } from "../../events/eventLog.js"
import { makePostgresEventLog } from "../../events/postgresEventLog.js"
import { makeRedisEventLog } from "../../events/redisEventLog.js"
import { compareWithLive } from "./compare.js"
import type { Comparison } from "./compare.js"
import { MANIFEST_FILE, parseManifest } from "../../cli/backup/format.pure.js"
import { recordRun } from "./runs.js"
import { reasonOf, TargetFailed } from "./target.js"
import type { BackupTarget } from "./target.js"

/*
 * The restore drill: proves that the latest backup restores. It restores the backup into a
 * scratch database and a scratch Redis key prefix (production; embedded: a scratch PGlite folder
 * under DATA_DIR), exactly as `botfleet restore` would (every checksum and line verified first),
 * then compares the projections rebuilt there with the live ones row by row (compare.ts), records
 * the result, and removes the scratch stores. A backup that does not restore, or restores to
 * something else than the live fleet has, is an alert.
 */

export interface DrillOutcome {
  readonly backup: string | null
  readonly ok: boolean
  /** The restore's failure, or null when it restored. */
  readonly error: string | null
  readonly comparison: Comparison | null
  readonly events: number
}

/** Scratch stores for one drill, removed with the scope. */
const scratchStores = (config: BotfleetConfig, partitions: number): Effect.Effect<{ readonly log: EventLogService; readonly sql: SqlClient }, TargetFailed, Scope.Scope> =>
  Effect.gen(function* () {
    const id = randomBytes(4).toString("hex")
    const failed = (what: string) => (e: unknown) => new TargetFailed({ where: what, reason: reasonOf(e) })
    if (config.mode === "embedded" || Option.isNone(config.databaseUrl) || Option.isNone(config.redisUrl)) {
      const dir = join(config.dataDir, `drill-${id}`)
      const sql = yield* Effect.acquireRelease(
        Effect.tryPromise({ try: () => makePgliteSql({ dataDir: dir }), catch: failed(`the scratch database in ${dir}`) }),
        (s) => Effect.promise(() => s.close().catch(() => undefined).then(() => rm(dir, { recursive: true, force: true }).catch(() => undefined)))
      )
      yield* Effect.tryPromise({ try: () => migrate(sql), catch: failed(`the scratch database in ${dir} (migrations)`) })
      const log = makePostgresEventLog({ sql, partitions })
      yield* Effect.addFinalizer(() => log.close)
      return { log, sql }
    }
    const liveUrl = Redacted.value(config.databaseUrl.value)
    const url = new URL(liveUrl)
    const name = `${url.pathname.slice(1) || "botfleet"}`.toLowerCase().replace(/[^a-z0-9_]/g, "_").slice(0, 40) + `_drill_${id}`
    url.pathname = `/${name}`
    const admin = (statement: string) => Effect.tryPromise({
      try: async () => {
        const sql = makePgSql(liveUrl, { max: 1, applicationName: "botfleet-drill" })
        try {
          await sql.query(statement)
        } finally {
          await sql.close()
        }
      },
      catch: failed(`${statement.split(" ").slice(0, 2).join(" ")} ${name} (the DATABASE_URL role needs CREATEDB for restore drills)`)
    })
    yield* Effect.acquireRelease(admin(`CREATE DATABASE ${name}`), () => Effect.ignore(admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)))
    const sql = yield* Effect.acquireRelease(Effect.sync(() => makePgSql(url.toString(), { max: 4, applicationName: "botfleet-drill" })), (s) => Effect.promise(() => s.close().catch(() => undefined)))
    yield* Effect.tryPromise({ try: () => migrate(sql), catch: failed(`the scratch database ${name} (migrations)`) })
    const redisUrl = Redacted.value(config.redisUrl.value)
    const prefix = `${config.redisPrefix}:drill:${id}`
    yield* Effect.addFinalizer(() => Effect.promise(() => deleteKeysUnder(redisUrl, prefix).catch(() => undefined)))
    const log = yield* Effect.acquireRelease(makeRedisEventLog({ url: redisUrl, prefix, partitions }), (l) => l.close)
    return { log, sql }
  })

/** Deletes every key of a drill's scratch prefix, in SCAN pages (every master of a cluster; the prefix holds no glob characters). */
const deleteKeysUnder = async (url: string, prefix: string) => {
  const redis = openRedis(url, "restore-drill")
  try {
    await scanKeys(redis, `${prefix}:*`, (keys) => unlinkKeys(redis, keys))
  } finally {
    redis.disconnect()
  }
}

const iso = (ms: number) => new Date(ms).toISOString()

/**
 * Runs one restore drill of backup `name` (default: the newest finished one in the target) and
 * records it (backup_runs, kind "drill"). Never fails: a drill that cannot restore or finds a
 * difference is a failed outcome, logged as an error line with `alert: "drill"`.
 */
export const runDrill = (o: {
  readonly target: BackupTarget
  readonly config: BotfleetConfig
  readonly liveSql: SqlClient
  readonly nodeId: string
  readonly name?: string
  /** The restore's phases (the CLI draws progress bars). */
  readonly onProgress?: (phase: "verify" | "append" | "project", done: number, total: number) => void
}): Effect.Effect<DrillOutcome> =>
  Effect.gen(function* () {
    const startedAt = yield* Clock.currentTimeMillis
    let name: string | null = o.name ?? null
    const attempt = Effect.gen(function* () {
      name ??= (yield* o.target.list).filter((e) => e.finished).at(-1)?.name ?? null
      const backup = name
      if (backup === null) return yield* new TargetFailed({ where: o.target.label, reason: "no finished backup to drill: take one first (botfleet backup now)" })
      return yield* Effect.scoped(
        Effect.gen(function* () {
          const dir = yield* o.target.local(backup)
          const text = yield* Effect.tryPromise({ try: () => readFile(join(dir, MANIFEST_FILE), "utf8"), catch: (e) => new TargetFailed({ where: `${backup}/${MANIFEST_FILE}`, reason: reasonOf(e) }) })
          const manifest = parseManifest(text)
          if (Either.isLeft(manifest)) return yield* new TargetFailed({ where: `${backup}/${MANIFEST_FILE}`, reason: manifest.left })
          const scratch = yield* scratchStores(o.config, manifest.right.partitions)
          const report = yield* restoreBackup({ log: scratch.log, sql: scratch.sql, dir, nodeId: `drill-${o.nodeId}`, ...(o.onProgress ? { onProgress: o.onProgress } : {}) }).pipe(
            Effect.mapError((e) => new TargetFailed({ where: `restoring ${backup}`, reason: e.message }))
          )
          const comparison = yield* compareWithLive({ live: o.liveSql, scratch: scratch.sql, startedAt: manifest.right.startedAt })
          return { events: report.events, comparison }
        })
      )
    })
    const result = yield* Effect.either(attempt)
    const outcome: DrillOutcome = Either.isRight(result)
      ? { backup: name, ok: result.right.comparison.identical, error: null, comparison: result.right.comparison, events: result.right.events }
      : { backup: name, ok: false, error: result.left.message, comparison: null, events: 0 }
    const finishedAt = yield* Clock.currentTimeMillis
    const c = outcome.comparison
    const detail = outcome.error !== null
      ? { error: outcome.error }
      : { settledBots: c!.settledBots, partialBots: c!.partialBots, rowsCompared: c!.rowsCompared, differences: c!.tables, missingFromBackup: c!.missingFromBackup, examples: c!.examples }
    const recorded = yield* Effect.either(recordRun(o.liveSql, {
      kind: "drill", backup: outcome.backup, target: o.target.label, nodeId: o.nodeId, startedAt: iso(startedAt), finishedAt: iso(finishedAt),
      ok: outcome.ok, events: outcome.events, bytes: null, detail
    }))
    const notes = { alert: "drill", backup: outcome.backup, target: o.target.label }
    if (outcome.ok) {
      yield* Effect.logInfo(`restore drill of ${outcome.backup}: restored ${outcome.events} events, ${c!.rowsCompared} projection rows equal to the live ones (${c!.settledBots} bots in full, ${c!.partialBots} up to the backup)`).pipe(Effect.annotateLogs({ backup: outcome.backup }))
    } else {
      const why = outcome.error ?? `the restored projections differ from the live ones: ${c!.examples.slice(0, 3).join("; ")}`
      yield* Effect.logError(`restore drill of ${outcome.backup ?? "(no backup)"} FAILED: ${why}`).pipe(Effect.annotateLogs(notes))
    }
    if (Either.isLeft(recorded)) yield* Effect.logError(`restore drill: ${recorded.left.message}`).pipe(Effect.annotateLogs(notes))
    return outcome
  })
