import { Context, Effect, Layer, Option, Redacted } from "effect"
import { openUserKeys, withSealing } from "../privacy/sealingLog.js"
import type { BotfleetConfig } from "../config.js"
import { migrate } from "../db/migrator.js"
import { lockPgliteDir } from "../db/pgliteLock.js"
import type { DataDirInUse, DataDirLockFailed } from "../db/pgliteLock.js"
import { makePgliteSql } from "../db/pgliteSql.js"
import { Sql } from "../db/sql.js"
import { makePostgresEventArchive } from "../actors/postgresEventArchive.js"
import { withArchiveReadThrough } from "../events/archiveReadThrough.js"
import { EventLog } from "../events/eventLog.js"
import { makePostgresEventLog } from "../events/postgresEventLog.js"
import { EmbeddedDatabaseFailed, eventLogLayer, sqlLayer } from "./runtime.js"

/**
 * The event log and Postgres together, for commands that read both (`import --verify`). In
 * embedded mode both are ONE PGlite (it allows one instance per folder); in production the
 * log's layer and the SQL layer side by side.
 */
export const eventLogAndSqlLayer = (config: BotfleetConfig): Layer.Layer<EventLog | Sql, EmbeddedDatabaseFailed | DataDirInUse | DataDirLockFailed> =>
  Option.isSome(config.redisUrl) && Option.isSome(config.databaseUrl)
    ? Layer.merge(eventLogLayer(config), sqlLayer(config))
    : Layer.scopedContext(
        Effect.gen(function* () {
          yield* Effect.mapError(lockPgliteDir(config.pgliteDir), (cause) => new EmbeddedDatabaseFailed({ dir: config.pgliteDir, cause }))
          const sql = yield* Effect.acquireRelease(
            Effect.tryPromise({ try: () => makePgliteSql({ dataDir: config.pgliteDir }), catch: (cause) => new EmbeddedDatabaseFailed({ dir: config.pgliteDir, cause }) }),
            (s) => Effect.promise(() => s.close())
          )
          yield* Effect.tryPromise({ try: () => migrate(sql), catch: (cause) => new EmbeddedDatabaseFailed({ dir: config.pgliteDir, cause }) })
          const { cache } = openUserKeys(sql, Redacted.value(config.secretKey), { listen: false })
          const log = withSealing(withArchiveReadThrough(makePostgresEventLog({ sql, partitions: config.partitions }), makePostgresEventArchive(sql)), cache)
          return Context.make(EventLog, log).pipe(Context.add(Sql, sql))
        })
      )
