import { Effect } from "effect"
import type { RedisClient } from "../health/redisHealth.js"
import { partitionOf, partitionTag } from "../events/partition.js"
import type { OffsetStore } from "./poller.js"

/**
 * Polling offsets in Redis, `<prefix>:{pNN}:offset:<botId>` (the bot's partition hash tag, so it
 * sits in the same Cluster slot as the bot's other keys). A plain SET: only the lease holder polls,
 * so there is one writer per bot.
 */
export const redisOffsetStore = (redis: RedisClient, prefix = "bf", partitions = 16): OffsetStore => {
  const key = (botId: string) => `${prefix}:{${partitionTag(partitionOf(botId, partitions))}}:offset:${botId}`
  return {
    load: (botId) =>
      Effect.tryPromise(async () => {
        const v = await redis.get(key(botId))
        return v === null ? null : Number(v)
      }),
    save: (botId, offset) => Effect.tryPromise(async () => void (await redis.set(key(botId), String(offset))))
  }
}
