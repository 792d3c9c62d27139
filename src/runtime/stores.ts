import { Data, Effect, Option, Redacted } from "effect"
import type { RedisClient } from "../health/redisHealth.js"
import type { Scope } from "effect"
import type { InboxService } from "../actors/inbox.js"
import { makePostgresEventArchive } from "../actors/postgresEventArchive.js"
import { makePostgresInbox } from "../actors/postgresInbox.js"
import { makePostgresSnapshotStore } from "../actors/postgresSnapshotStore.js"
import { makeRedisInbox } from "../actors/redisInbox.js"
import type { SnapshotStoreService } from "../actors/snapshotStore.js"
import type { BotfleetConfig } from "../config.js"
import { migrate } from "../db/migrator.js"
import { makePgliteSql } from "../db/pgliteSql.js"
import { lockPgliteDir } from "../db/pgliteLock.js"
import { makePgSql } from "../db/pgSql.js"
import type { SqlClient } from "../db/sql.js"
import { withArchiveReadThrough } from "../events/archiveReadThrough.js"
import type { EventLogService } from "../events/eventLog.js"
import { makePostgresEventLog } from "../events/postgresEventLog.js"
import { makeRedisEventLog } from "../events/redisEventLog.js"
import { duplicateRedis, isCluster, openRedis } from "../health/redisHealth.js"
import type { OffsetStore } from "../telegram/poller.js"
import { postgresOffsetStore } from "../telegram/postgresOffsetStore.js"
import { redisOffsetStore } from "../telegram/redisOffsetStore.js"
import type { IngressStore } from "../telegram/ingressStore.js"
import { redisIngressStore } from "../telegram/redisIngressStore.js"
import { redisUpdateDedupe } from "../telegram/updateDedupe.js"
import type { UpdateDedupe } from "../telegram/updateDedupe.js"
import type { KeyCache } from "../privacy/keyCache.js"
import { openUserKeys, withSealing } from "../privacy/sealingLog.js"
import type { UserKeys } from "../privacy/userKeys.js"

/** Everything a node stores, for the configured mode. */
export interface NodeStores {
  /** Projections, the fleet directory, and (embedded) everything else. Migrated. */
  readonly sql: SqlClient
  /**
   * The log, its streams read through to the events archive (archiveReadThrough.ts): a stream the
   * trimmer shortened still reads whole. What every reader of a bot's history uses.
   */
  readonly log: EventLogService
  /** The same log without the read-through: the actors (which read the archive themselves) and the trimmer. */
  readonly hotLog: EventLogService
  readonly inbox: InboxService
  readonly snapshots: SnapshotStoreService
  readonly offsets: OffsetStore
  /** Edge dedupe at the ingress (production only: the decider dedupes in any case). */
  readonly dedupe: UpdateDedupe | null
  /** Production: the ingress's inbox append + dedupe in one Redis round trip, on a connection of its own. */
  readonly ingress?: IngressStore
  /** Production mode's Redis connection (readiness ping, memory gauges); null in embedded mode. */
  readonly redis: RedisClient | null
  /** Per-user keys (`user_keys`, in `sql`) and this process's cache of them: both logs seal and open with it (docs/privacy.md). */
  readonly userKeys: UserKeys
  readonly keyCache: KeyCache
}

/** A store could not be opened or migrated at start-up. */
export class StoresUnavailable extends Data.TaggedError("StoresUnavailable")<{ readonly what: string; readonly cause: unknown }> {
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `cannot open ${this.what}: ${cause}`
  }
}

const opened = <A>(what: string, open: () => Promise<A>, close: (a: A) => Promise<unknown>) =>
  Effect.acquireRelease(
    Effect.tryPromise({ try: open, catch: (cause) => new StoresUnavailable({ what, cause }) }),
    (a) => Effect.promise(() => close(a).catch(() => undefined))
  )

const migrated = (what: string, sql: SqlClient) =>
  Effect.tryPromise({ try: () => migrate(sql), catch: (cause) => new StoresUnavailable({ what: `${what} (migrations)`, cause }) })

/**
 * Migrations as the migration login when MIGRATION_DATABASE_URL is set (its own short-lived
 * connection, closed once done), so the node's own login needs no right to change the schema;
 * else as DATABASE_URL's login.
 */
const migratedAs = (config: BotfleetConfig, sql: SqlClient) =>
  Option.match(config.migrationDatabaseUrl, {
    onNone: () =>
      migrated("the Postgres database at DATABASE_URL", sql).pipe(
        Effect.mapError((e) =>
          (e.cause as { code?: unknown } | null)?.code === "42501" || /permission denied/.test(e.message)
            ? new StoresUnavailable({ what: `${e.what}; DATABASE_URL's login may not change the schema: set MIGRATION_DATABASE_URL to a login that may`, cause: e.cause })
            : e
        )
      ),
    onSome: (url) =>
      Effect.acquireUseRelease(
        Effect.sync(() => makePgSql(Redacted.value(url), { max: 1, applicationName: `botfleet-migrate-${config.nodeId}`.slice(0, 63) })),
        (migrator) => migrated("the Postgres database at MIGRATION_DATABASE_URL", migrator),
        (migrator) => Effect.promise(() => migrator.close().catch(() => undefined))
      )
  })

/**
 * Opens the mode's stores in the scope (closed with it, in reverse order):
 * - embedded: one PGlite database under DATA_DIR/pglite holds the log (Postgres adapter), the
 *   inboxes, snapshots, polling offsets and projections. PGlite allows one process per folder.
 * - production: the Redis log, inboxes, offsets and edge dedupe on REDIS_URL; the projections,
 *   the fleet directory and the actors' snapshots (bot-level state + keyed entries) on DATABASE_URL.
 * Migrations are applied first in both modes (concurrent nodes are serialised by the migrator), in
 * production as MIGRATION_DATABASE_URL's login when it is set.
 */
export const openStores = (config: BotfleetConfig): Effect.Effect<NodeStores, StoresUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    if (config.mode === "embedded" || Option.isNone(config.redisUrl) || Option.isNone(config.databaseUrl)) {
      const what = `the embedded database in ${config.pgliteDir}`
      // one process per PGlite folder (pgliteLock.ts): a second one would corrupt it
      yield* Effect.mapError(lockPgliteDir(config.pgliteDir), (cause) => new StoresUnavailable({ what, cause }))
      const sql = yield* opened(what, () => makePgliteSql({ dataDir: config.pgliteDir }), (s) => s.close())
      yield* migrated(what, sql)
      const log = makePostgresEventLog({ sql, partitions: config.partitions })
      yield* Effect.addFinalizer(() => log.close)
      // one process per PGlite folder: every enqueue is this process's and wakes its reader, so
      // waiting readers need not poll the table
      const inbox = makePostgresInbox({ sql, pollMs: 10_000 })
      yield* Effect.addFinalizer(() => inbox.close)
      const { keys, cache } = openUserKeys(sql, Redacted.value(config.secretKey))
      yield* Effect.addFinalizer(() => Effect.sync(() => cache.close()))
      return {
        sql,
        log: withSealing(withArchiveReadThrough(log, makePostgresEventArchive(sql)), cache),
        hotLog: withSealing(log, cache),
        userKeys: keys,
        keyCache: cache,
        inbox,
        snapshots: makePostgresSnapshotStore(sql),
        offsets: postgresOffsetStore(sql),
        dedupe: null,
        redis: null
      }
    }
    const redisUrl = Redacted.value(config.redisUrl.value)
    const databaseUrl = Redacted.value(config.databaseUrl.value)
    const sql = yield* opened("the Postgres database at DATABASE_URL", async () => makePgSql(databaseUrl, { applicationName: `botfleet-${config.nodeId}`.slice(0, 63) }), (s) => s.close())
    yield* migratedAs(config, sql)
    const redis = yield* opened(
      "Redis at REDIS_URL",
      async () => {
        const r = openRedis(redisUrl, "stores", { maxRetriesPerRequest: 2, lazyConnect: true })
        await r.connect()
        return r
      },
      (r) => r.quit()
    )
    // the webhook's own connection, auto-pipelined: the appends of concurrent requests share a write.
    // No offline queue on a single server: while Redis is unreachable an append fails at once and
    // the webhook answers 503 in milliseconds; with one, a request waited through the reconnect
    // attempts (their delays grow to 2 s) and answered seconds later. (A cluster keeps its queue:
    // its failover retries ride on it.)
    const ingressRedis = yield* opened(
      "Redis at REDIS_URL (the webhook's connection)",
      async () => {
        const r = duplicateRedis(redis, "ingress", { enableAutoPipelining: true, ...(isCluster(redis) ? {} : { enableOfflineQueue: false }) })
        await r.connect()
        return r
      },
      (r) => r.quit().catch(() => undefined)
    )
    const log = yield* Effect.acquireRelease(makeRedisEventLog({ url: redisUrl, prefix: config.redisPrefix, partitions: config.partitions }), (l) => l.close)
    const shared = { redis, prefix: config.redisPrefix, partitions: config.partitions }
    const inbox = makeRedisInbox(shared)
    yield* Effect.addFinalizer(() => inbox.close)
    const { keys, cache } = openUserKeys(sql, Redacted.value(config.secretKey))
    yield* Effect.addFinalizer(() => Effect.sync(() => cache.close()))
    return {
      sql,
      log: withSealing(withArchiveReadThrough(log, makePostgresEventArchive(sql)), cache),
      hotLog: withSealing(log, cache),
      userKeys: keys,
      keyCache: cache,
      inbox,
      // on Postgres, not Redis: a bot's entries grow with its users, and Redis holds only the hot log
      snapshots: makePostgresSnapshotStore(sql),
      offsets: redisOffsetStore(redis, config.redisPrefix, config.partitions),
      dedupe: redisUpdateDedupe(redis, config.redisPrefix, config.partitions),
      ingress: redisIngressStore(ingressRedis, config.redisPrefix, config.partitions),
      redis
    }
  })
