import type { Redis } from "ioredis"
import { InboxUnavailable, checkUpdate } from "../actors/inbox.js"
import { partitionOf, redisKeys } from "../events/partition.js"
import type { IngressStore } from "./ingressStore.js"
import { DEDUPE_TTL_S, dedupeKey } from "./updateDedupe.js"

/*
 * The edge dedupe check, the inbox append and the dedupe mark in one script: one round trip per
 * update instead of three (EXISTS, XADD, SET). KEYS[1] the bot's inbox, KEYS[2] its seen-mark for
 * this update_id (same hash tag: Redis Cluster runs it on one shard); ARGV[1] the update JSON,
 * ARGV[2] the mark's TTL. Returns the inbox entry id, or false for a redelivery already stored.
 * The mark is set after the append inside the same atomic script, so a mark never exists for an
 * update that is not in the inbox.
 */
const ACCEPT = `
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
local id = redis.call('XADD', KEYS[1], '*', 'u', ARGV[1])
redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
return id
`

interface WithAccept {
  bfIngressAccept(inbox: string, seen: string, update: string, ttl: number): Promise<string | null>
}

/**
 * The production ingress store on Redis: the same inbox stream (`redisInbox.ts`) and seen-marks
 * (`updateDedupe.ts`) the three-step path writes, so both read the same data. `redis` should be a
 * connection of the ingress's own with auto-pipelining on: the concurrent requests of one event
 * loop turn go to Redis in one write.
 */
export const redisIngressStore = (redis: Redis, prefix = "bf", partitions = 16): IngressStore => {
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
        id = await client.bfIngressAccept(inbox, seenKey(botId, update.update_id), JSON.stringify(update), DEDUPE_TTL_S)
      } catch (cause) {
        throw new InboxUnavailable({ operation: "enqueue", cause })
      }
      return id === null ? "duplicate" : "stored"
    }
  }
}
