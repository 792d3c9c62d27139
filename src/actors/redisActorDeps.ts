import { Effect } from "effect"
import { makePgSql } from "../db/pgSql.js"
import { makeRedisEventLog } from "../events/redisEventLog.js"
import { openRedis } from "../health/redisHealth.js"
import type { ActorDeps } from "./actor.js"
import { echoHandler } from "./decider/updateHandler.js"
import { makePostgresEventArchive } from "./postgresEventArchive.js"
import type { BotState } from "./decider/state.js"
import type { UpdateHandler } from "./decider/updateHandler.js"
import { makeRedisInbox } from "./redisInbox.js"
import { makePostgresSnapshotStore } from "./postgresSnapshotStore.js"
import { makeMemorySnapshotStore } from "./snapshotStore.js"
import { loadModule } from "./worker/loadModule.js"

export interface RedisActorDepsOptions {
  readonly url: string
  readonly prefix?: string
  readonly partitions?: number
  /** A module (path or URL) exporting `handlerFor(state): UpdateHandler`; the echo kind when absent. */
  readonly kindsModule?: string
  /**
   * The Postgres database holding `events_archive` (hydration reads there what Redis trimmed) and
   * the actors' snapshots. None: no archive, and snapshots kept in the thread's memory only.
   */
  readonly databaseUrl?: string | null
}

/**
 * The ports of one worker thread over Redis: one command connection shared by the log's appends,
 * the inboxes and the snapshots of every bot on the thread (plus the log's and the inbox's own
 * blocking connections). Named in `WorkerSetup.module` for the pool host.
 *
 * With `databaseUrl`, the thread also gets the snapshot store and the archive, over a pool of its
 * own kept small (four connections): snapshots are read at activation and when an update needs a
 * user or session that is not in memory, written every SNAPSHOT_EVERY events; the archive only
 * when a bot's history was trimmed below an unusable snapshot. The pool connects lazily and lets
 * idle connections go (pg's idle timeout), so it is never closed.
 */
export const createActorDeps = async (o: RedisActorDepsOptions): Promise<ActorDeps> => {
  const redis = openRedis(o.url, "actors", { maxRetriesPerRequest: 2, enableAutoPipelining: true })
  const shared = { redis, prefix: o.prefix, partitions: o.partitions }
  const log = await Effect.runPromise(makeRedisEventLog(shared))
  const handlerFor: (s: BotState) => UpdateHandler = o.kindsModule
    ? (await loadModule<{ handlerFor: (s: BotState) => UpdateHandler }>(o.kindsModule)).handlerFor
    : () => echoHandler
  const sql = o.databaseUrl ? makePgSql(o.databaseUrl, { max: 4, applicationName: "botfleet-actors" }) : null
  const snapshots = sql ? makePostgresSnapshotStore(sql) : makeMemorySnapshotStore()
  return { log, inbox: makeRedisInbox(shared), snapshots, handlerFor, ...(sql ? { archive: makePostgresEventArchive(sql) } : {}) }
}
