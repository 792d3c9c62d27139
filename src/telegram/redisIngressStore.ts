import type { RedisClient } from "../health/redisHealth.js"
import { InboxUnavailable, checkUpdate } from "../actors/inbox.js"
import { partitionOf, redisKeys } from "../events/partition.js"
import type { IngressStore } from "./ingressStore.js"
import { DEDUPE_TTL_S, EDGE_DEDUPE_IDS, REMEMBER_BODY, dedupeKey } from "./updateDedupe.js"

/*
 * The edge dedupe check, the inbox append and the dedupe mark in one script: one round trip per
 * update instead of three (ZSCORE, XADD, the remember script). KEYS[1] the bot's set of remembered
 * update ids (updateDedupe.ts), KEYS[2] its inbox (same hash tag: Redis Cluster runs it on one
 * shard); ARGV[1] the update_id, ARGV[2] now (ms), ARGV[3] the window (ms), ARGV[4] the cap,
 * ARGV[5] the update JSON. Returns the inbox entry id, or false for a redelivery already stored.
 * The id is remembered after the append, inside the same atomic script, so an id is never
 * remembered without its inbox entry, and two concurrent deliveries cannot both append.
 */
const ACCEPT = `
local at = redis.call('ZSCORE', KEYS[1], ARGV[1])
if at and tonumber(at) >= tonumber(ARGV[2]) - tonumber(ARGV[3]) then return false end
local entry = redis.call('XADD', KEYS[2], '*', 'u', ARGV[5])
${REMEMBER_BODY}
return entry
`

interface WithAccept {
  bfIngressAccept(seen: string, inbox: string, id: string, now: number, windowMs: number, cap: number, update: string): Promise<string | null>
}

/**
 * The production ingress store on Redis: the same inbox stream (`redisInbox.ts`) and dedupe sets
 * (`updateDedupe.ts`) the step-by-step path writes, so both read the same data. `redis` should be
 * a connection of the ingress's own with auto-pipelining on: the concurrent requests of one event
 * loop turn go to Redis in one write.
 */
export const redisIngressStore = (redis: RedisClient, prefix = "bf", partitions = 16, now: () => number = Date.now): IngressStore => {
  // EVALSHA, EVAL again after NOSCRIPT
  if (!("bfIngressAccept" in redis.scriptsSet)) redis.defineCommand("bfIngressAccept", { numberOfKeys: 2, lua: ACCEPT })
  const client = redis as unknown as WithAccept
  const seenKey = dedupeKey(prefix, partitions)
  const windowMs = DEDUPE_TTL_S * 1000
  return {
    accept: async (botId, update) => {
      const bad = checkUpdate(botId, update)
      if (bad) throw bad
      const inbox = redisKeys(prefix, partitionOf(botId, partitions)).inbox(botId)
      let entry: string | null
      try {
        entry = await client.bfIngressAccept(seenKey(botId), inbox, String(update.update_id), now(), windowMs, EDGE_DEDUPE_IDS, JSON.stringify(update))
      } catch (cause) {
        throw new InboxUnavailable({ operation: "enqueue", cause })
      }
      return entry === null ? "duplicate" : "stored"
    }
  }
}
