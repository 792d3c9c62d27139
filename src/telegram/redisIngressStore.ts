import type { RedisClient } from "../health/redisHealth.js"
import { InboxUnavailable, checkUpdate } from "../actors/inbox.js"
import { partitionOf, redisKeys } from "../events/partition.js"
import type { IngressStore } from "./ingressStore.js"
import { DEDUPE_TTL_S, EDGE_DEDUPE_IDS, dedupeKey } from "./updateDedupe.js"

/*
 * The edge dedupe check, the inbox append and the dedupe mark in one script: one round trip per
 * update instead of three (ZSCORE, XADD, the mark). KEYS[1] the bot's inbox, KEYS[2] its sorted
 * set of recently stored update ids (same hash tag: Redis Cluster runs it on one shard); ARGV[1]
 * the update JSON, ARGV[2] its update_id, ARGV[3] now (ms), ARGV[4] the window (ms), ARGV[5] the
 * most ids kept per bot. The mark is bounded as updateDedupe.ts keeps it (the newest ids of the
 * window) and set after the append inside the same atomic script, so a mark never exists for an
 * update that is not in the inbox. Returns the inbox entry id, or false for a redelivery.
 */
const ACCEPT = `
local at = redis.call('ZSCORE', KEYS[2], ARGV[2])
if at and tonumber(at) >= tonumber(ARGV[3]) - tonumber(ARGV[4]) then return false end
local id = redis.call('XADD', KEYS[1], '*', 'u', ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (tonumber(ARGV[3]) - tonumber(ARGV[4])))
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if over > 0 then redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1) end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return id
`

interface WithAccept {
  bfIngressAccept(inbox: string, seen: string, update: string, updateId: number, now: number, windowMs: number, cap: number): Promise<string | null>
}

/**
 * The production ingress store on Redis: the same inbox stream (`redisInbox.ts`) and seen-marks
 * (`updateDedupe.ts`) the three-step path writes, so both read the same data. `redis` should be a
 * connection of the ingress's own with auto-pipelining on: the concurrent requests of one event
 * loop turn go to Redis in one write.
 */
export const redisIngressStore = (redis: RedisClient, prefix = "bf", partitions = 16): IngressStore => {
  if (!("bfIngressAccept" in redis)) redis.defineCommand("bfIngressAccept", { numberOfKeys: 2, lua: ACCEPT })
  const client = redis as unknown as WithAccept
  const seenKey = dedupeKey(prefix, partitions)
  return {
    accept: async (botId, update) => {
      const bad = checkUpdate(botId, update)
      if (bad) throw bad
      const inbox = redisKeys(prefix, partitionOf(botId, partitions)).inbox(botId)
      let id: string | null
      try {
        id = await client.bfIngressAccept(inbox, seenKey(botId), JSON.stringify(update), update.update_id, Date.now(), DEDUPE_TTL_S * 1000, EDGE_DEDUPE_IDS)
      } catch (cause) {
        throw new InboxUnavailable({ operation: "enqueue", cause })
      }
      return id === null ? "duplicate" : "stored"
    }
  }
}
