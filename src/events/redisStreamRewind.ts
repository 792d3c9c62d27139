import { Effect } from "effect"
import type { RedisClient } from "../health/redisHealth.js"
import { LogUnavailable, StaleFence } from "./errors.js"
import { partitionOf, redisKeys } from "./partition.js"

/*
 * Rewinding a bot's Redis stream: the one repair of a hot log that diverged from the archive
 * (docs/redis.md). Not part of the log port: only the Redis log can lose acknowledged writes and
 * diverge; the Postgres log shares its database's durability with the archive.
 */

/**
 * KEYS: bot stream, lease, snapshot. ARGV: keep (the version to keep up to), fence.
 * Reply: {0, entriesDeleted} | {1, currentFence}.
 */
const rewindLua = `
local h = redis.call('HMGET', KEYS[2], 'nodeId', 'fence')
local fence = tonumber(h[2]) or 0
if not (h[1] and h[1] ~= '') or fence ~= tonumber(ARGV[2]) then return {1, fence} end
local keep = tonumber(ARGV[1])
local deleted = 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  local later = redis.call('XRANGE', KEYS[1], (keep + 1) .. '-0', '+')
  for _, e in ipairs(later) do deleted = deleted + redis.call('XDEL', KEYS[1], e[1]) end
  redis.call('XSETID', KEYS[1], keep .. '-0')
end
redis.call('DEL', KEYS[3])
return {0, deleted}
`

/**
 * Removes a bot's stream entries above version `keep` and sets the stream back to version `keep`,
 * so the next append is `keep + 1`; drops the bot's snapshot (it may cover removed versions).
 * Atomic (one Lua call), and only for the holder of the bot's lease (`fence`): StaleFence
 * otherwise, nothing changed. The partition log keeps its entries (its readers already passed them).
 * Resolves with the number of entries removed.
 */
export const rewindRedisStream = (o: {
  readonly redis: RedisClient
  readonly prefix: string
  readonly partitions: number
  readonly botId: string
  readonly keep: number
  readonly fence: number
}): Effect.Effect<number, StaleFence | LogUnavailable> =>
  Effect.gen(function* () {
    const keys = redisKeys(o.prefix, partitionOf(o.botId, o.partitions))
    const reply = (yield* Effect.tryPromise({
      try: () => o.redis.eval(rewindLua, 3, keys.stream(o.botId), keys.lease(o.botId), keys.snapshot(o.botId), String(o.keep), String(o.fence)),
      catch: (cause) => new LogUnavailable({ operation: "rewindStream", cause })
    })) as [number, number]
    if (reply[0] !== 0) return yield* new StaleFence({ botId: o.botId, fence: o.fence, current: reply[1] })
    return reply[1]
  })
