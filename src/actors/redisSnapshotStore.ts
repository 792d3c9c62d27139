import { Effect } from "effect"
import { Redis } from "ioredis"
import { partitionOf, redisKeys } from "../events/partition.js"
import { SnapshotUnavailable } from "./snapshotStore.js"
import type { Snapshot, SnapshotStoreService } from "./snapshotStore.js"

export interface RedisSnapshotStoreOptions {
  readonly url?: string
  /** A client the caller owns (not closed by `close`). */
  readonly redis?: Redis
  readonly prefix?: string
  readonly partitions?: number
}

// keeps the newest snapshot: a slow writer finishing late must not replace a newer one
const SAVE = `
local cur = redis.call('HGET', KEYS[1], 'version')
if cur and tonumber(cur) > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'schemaVersion', ARGV[2], 'state', ARGV[3])
return 1`

/** Snapshots as hashes at `bf:{pNN}:snap:<botId>` (version, schemaVersion, state JSON). */
export const makeRedisSnapshotStore = (options: RedisSnapshotStoreOptions = {}): SnapshotStoreService => {
  const prefix = options.prefix ?? "bf"
  const partitions = options.partitions ?? 16
  const owned = options.redis === undefined
  const redis = options.redis ?? new Redis(options.url ?? "redis://127.0.0.1:6379", { maxRetriesPerRequest: 2 })
  const keyOf = (botId: string) => redisKeys(prefix, partitionOf(botId, partitions)).snapshot(botId)
  const call = <A>(operation: string, f: () => Promise<A>) =>
    Effect.tryPromise({ try: f, catch: (cause) => new SnapshotUnavailable({ operation, cause }) })
  return {
    load: (botId) =>
      call("load", async (): Promise<Snapshot | null> => {
        const h = await redis.hgetall(keyOf(botId))
        if (h["version"] === undefined || h["state"] === undefined) return null
        try {
          return { version: Number(h["version"]), schemaVersion: Number(h["schemaVersion"]), state: JSON.parse(h["state"]) }
        } catch {
          return null // unreadable: rebuild from events
        }
      }),
    save: (botId, s) =>
      call("save", async () => {
        await redis.eval(SAVE, 1, keyOf(botId), s.version, s.schemaVersion, JSON.stringify(s.state))
      }),
    version: (botId) => call("version", async () => Number((await redis.hget(keyOf(botId), "version")) ?? 0)),
    close: owned ? Effect.promise(() => redis.quit().catch(() => undefined)).pipe(Effect.asVoid) : Effect.void
  }
}
