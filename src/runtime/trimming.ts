import { Duration, Effect } from "effect"
import type { BotfleetConfig } from "../config.js"
import type { SqlClient } from "../db/sql.js"
import { makePostgresTrimLedger } from "../trim/trimLedger.js"
import { runTrimmer } from "../trim/trimmer.js"
import type { NodeStores } from "./stores.js"

/**
 * The node's hot-log trimmer (docs/redis.md "Trimming"), over the mode's stores: the hot log
 * itself (Redis, or the Postgres log when embedded), the archive database for its checks, and the
 * snapshot store for each bot's latest snapshot version. Every node runs one; a partition is
 * trimmed by whichever node holds its trimmer lease.
 */
export const runNodeTrimmer = (config: BotfleetConfig, stores: NodeStores, nodeId: string): Effect.Effect<never> =>
  runTrimmer({
    ...(config.mode === "embedded" ? { afterRound: vacuumEmbeddedLog(stores.sql) } : {}),
    log: stores.hotLog,
    ledger: makePostgresTrimLedger(stores.sql),
    snapshotVersion: (botId) => stores.snapshots.version(botId),
    nodeId,
    hotEvents: config.hotLogEvents,
    maxAgeMs: config.hotLogMaxAgeMs,
    interval: Duration.millis(config.hotLogTrimIntervalMs),
    // a holder that stopped running lets go after a few of its runs
    leaseTtlMs: Math.max(30_000, 3 * config.hotLogTrimIntervalMs)
  })

/**
 * PGlite runs no autovacuum: rows the trimmer deleted would stay dead and the log's files would
 * grow for good. After a round that removed anything, the log's hot tables are vacuumed (the
 * acked pending entries go too), so new rows reuse the space and embedded mode stays bounded on
 * disk as well. A failure is logged, never fatal: the next round tries again.
 */
export const vacuumEmbeddedLog = (sql: SqlClient) => (removed: number): Effect.Effect<void> =>
  removed === 0
    ? Effect.void
    : Effect.tryPromise(() => sql.exec("VACUUM events, pending")).pipe(
        Effect.catchAll((e) => Effect.logWarning(`vacuuming the embedded log after trimming: ${String(e.error)}`))
      )
