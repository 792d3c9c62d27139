import { Effect } from "effect"
import type { Redis } from "ioredis"
import { partitionOf, partitionTag } from "../events/partition.js"

/**
 * Remembers which (bot, update_id) the ingress already stored, for at least 25 h: Telegram
 * redelivers an update it did not see acknowledged, and update_id is only sequential while a bot
 * is busy, so a high-water mark alone cannot tell a redelivery from a new update. A hint that saves
 * an inbox write: the decider's own window (recorded state) is what guarantees once-only handling.
 */
export interface UpdateDedupe {
  readonly seen: (botId: string, updateId: number) => Effect.Effect<boolean, unknown>
  readonly remember: (botId: string, updateId: number) => Effect.Effect<void, unknown>
}

export const DEDUPE_TTL_S = 25 * 60 * 60

/** The seen-mark key of (bot, update_id): beside the bot's inbox, same hash tag. */
export const dedupeKey =
  (prefix = "bf", partitions = 16) =>
  (botId: string, id: number): string =>
    `${prefix}:{${partitionTag(partitionOf(botId, partitions))}}:seen:${botId}:${id}`

export const redisUpdateDedupe = (redis: Redis, prefix = "bf", partitions = 16): UpdateDedupe => {
  const key = dedupeKey(prefix, partitions)
  return {
    seen: (botId, id) => Effect.tryPromise(async () => (await redis.exists(key(botId, id))) === 1),
    remember: (botId, id) => Effect.tryPromise(async () => void (await redis.set(key(botId, id), "1", "EX", DEDUPE_TTL_S)))
  }
}

export const memoryUpdateDedupe = (now: () => number = Date.now): UpdateDedupe => {
  const seen = new Map<string, number>()
  return {
    seen: (botId, id) => Effect.sync(() => (seen.get(`${botId}:${id}`) ?? -Infinity) > now()),
    remember: (botId, id) =>
      Effect.sync(() => {
        seen.set(`${botId}:${id}`, now() + DEDUPE_TTL_S * 1000)
      })
  }
}
