import { Effect } from "effect"
import { Redis } from "ioredis"
import { makeRedisEventLog } from "../events/redisEventLog.js"
import type { ActorDeps } from "./actor.js"
import { echoHandler } from "./decider/updateHandler.js"
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
}

/**
 * The ports of one worker thread over Redis: one command connection shared by the log's appends,
 * the inboxes and the snapshots of every bot on the thread (plus the log's and the inbox's own
 * blocking connections). Named in `WorkerSetup.module` for the pool host.
 */
export const createActorDeps = async (o: RedisActorDepsOptions): Promise<ActorDeps> => {
  const redis = new Redis(o.url, { maxRetriesPerRequest: 2, enableAutoPipelining: true })
  const shared = { redis, prefix: o.prefix, partitions: o.partitions }
  const log = await Effect.runPromise(makeRedisEventLog(shared))
  const handlerFor: (s: BotState) => UpdateHandler = o.kindsModule
    ? (await loadModule<{ handlerFor: (s: BotState) => UpdateHandler }>(o.kindsModule)).handlerFor
    : () => echoHandler
  return { log, inbox: makeRedisInbox(shared), snapshots: makeRedisSnapshotStore(shared), handlerFor }
}
