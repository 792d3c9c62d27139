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
import { makeRedisSnapshotStore } from "./redisSnapshotStore.js"
import { loadModule } from "./worker/loadModule.js"

export interface RedisActorDepsOptions {
  readonly url: string
  readonly prefix?: string
  readonly partitions?: number
  /** A module (path or URL) exporting `handlerFor(state): UpdateHandler`; the echo kind when absent. */
  readonly kindsModule?: string
  /** The Postgres database holding `events_archive`: hydration reads there what Redis trimmed. None: no archive. */
  readonly databaseUrl?: string | null
}

/**
 * The ports of one worker thread over Redis: one command connection shared by the log's appends,
 * the inboxes and the snapshots of every bot on the thread (plus the log's and the inbox's own
 * blocking connections). Named in `WorkerSetup.module` for the pool host.
 *
 * With `databaseUrl`, the thread also gets the archive, over a pool of its own kept small (two
 * connections): it is read only when a bot's history was trimmed below an unusable snapshot,
 * connects lazily, and lets idle connections go (pg's idle timeout), so it is never closed.
 */
export const createActorDeps = async (o: RedisActorDepsOptions): Promise<ActorDeps> => {
  const redis = openRedis(o.url, "actors", { maxRetriesPerRequest: 2, enableAutoPipelining: true })
  const shared = { redis, prefix: o.prefix, partitions: o.partitions }
  const log = await Effect.runPromise(makeRedisEventLog(shared))
  const handlerFor: (s: BotState) => UpdateHandler = o.kindsModule
    ? (await loadModule<{ handlerFor: (s: BotState) => UpdateHandler }>(o.kindsModule)).handlerFor
    : () => echoHandler
  const archive = o.databaseUrl ? makePostgresEventArchive(makePgSql(o.databaseUrl, { max: 2, applicationName: "botfleet-archive" })) : undefined
  return { log, inbox: makeRedisInbox(shared), snapshots: makeRedisSnapshotStore(shared), handlerFor, ...(archive ? { archive } : {}) }
}
