import { Effect } from "effect"
import type { RedisClient } from "../health/redisHealth.js"
import { partitionOf, partitionTag } from "../events/partition.js"

/**
 * Remembers which (bot, update_id) the ingress already stored: Telegram redelivers an update it
 * did not see acknowledged, and update_id is only sequential while a bot is busy, so a high-water
 * mark alone cannot tell a redelivery from a new update. A hint that saves an inbox write: the
 * decider's own window (recorded state, dedupeWindow.ts) is what guarantees once-only handling,
 * so the hint may forget; what it must not do is grow with traffic.
 *
 * Bounded per bot: the newest `EDGE_DEDUPE_IDS` ids of the last 25 h, in one sorted set per bot
 * (member: the id, score: when it was stored). A redelivery older than that still reaches the
 * inbox and is dropped by the decider (`UpdateDuplicateDropped`).
 */
export interface UpdateDedupe {
  readonly seen: (botId: string, updateId: number) => Effect.Effect<boolean, unknown>
  readonly remember: (botId: string, updateId: number) => Effect.Effect<void, unknown>
}

export const DEDUPE_TTL_S = 25 * 60 * 60
/** Ids remembered per bot at most: about 80 bytes each in Redis, so ~160 KB for a busy bot. */
export const EDGE_DEDUPE_IDS = 2048

/*
 * Adds the id, forgets what is older than the window, keeps the newest EDGE_DEDUPE_IDS, and lets
 * the whole set expire with the window (a bot that stops getting updates leaves nothing behind).
 * KEYS[1] set; ARGV: id, now ms, window ms, cap. `REMEMBER_BODY` is shared with the ingress's
 * one-round-trip script (redisIngressStore.ts), which runs it after its inbox append.
 */
export const REMEMBER_BODY = `
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (tonumber(ARGV[2]) - tonumber(ARGV[3])))
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
if over > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])`
const REMEMBER = `${REMEMBER_BODY}
return 1`

/** The bot's set of remembered update ids: beside its inbox, same hash tag. */
export const dedupeKey =
  (prefix = "bf", partitions = 16) =>
  (botId: string): string =>
    `${prefix}:{${partitionTag(partitionOf(botId, partitions))}}:seen:${botId}`

export const redisUpdateDedupe = (redis: RedisClient, prefix = "bf", partitions = 16, now: () => number = Date.now): UpdateDedupe => {
  const key = dedupeKey(prefix, partitions)
  const windowMs = DEDUPE_TTL_S * 1000
  // EVALSHA, EVAL again after NOSCRIPT
  if (!("bfDedupeRemember" in redis.scriptsSet)) redis.defineCommand("bfDedupeRemember", { numberOfKeys: 1, lua: REMEMBER })
  const scripted = redis as RedisClient & { bfDedupeRemember: (key: string, id: string, at: number, window: number, cap: number) => Promise<number> }
  return {
    seen: (botId, id) =>
      Effect.tryPromise(async () => {
        const at = await redis.zscore(key(botId), String(id))
        return at !== null && Number(at) >= now() - windowMs
      }),
    remember: (botId, id) =>
      Effect.tryPromise(async () => void (await scripted.bfDedupeRemember(key(botId), String(id), now(), windowMs, EDGE_DEDUPE_IDS)))
  }
}

/** The same bounds in memory (embedded mode): per bot, ids in insertion order with their time. */
export const memoryUpdateDedupe = (now: () => number = Date.now): UpdateDedupe => {
  const bots = new Map<string, Map<number, number>>()
  const windowMs = DEDUPE_TTL_S * 1000
  return {
    seen: (botId, id) => Effect.sync(() => (bots.get(botId)?.get(id) ?? -Infinity) >= now() - windowMs),
    remember: (botId, id) =>
      Effect.sync(() => {
        const ids = bots.get(botId) ?? new Map<number, number>()
        bots.set(botId, ids)
        ids.delete(id)
        ids.set(id, now())
        // oldest first: Map keeps insertion order
        for (const [old, at] of ids) {
          if (ids.size <= EDGE_DEDUPE_IDS && at >= now() - windowMs) break
          ids.delete(old)
        }
      })
  }
}
