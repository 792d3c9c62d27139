import { Effect } from "effect"
import { Redis } from "ioredis"
import { afterAll, describe, expect, it } from "vitest"
import { DEDUPE_TTL_S, EDGE_DEDUPE_IDS, memoryUpdateDedupe, redisUpdateDedupe } from "../../src/telegram/updateDedupe.js"
import type { UpdateDedupe } from "../../src/telegram/updateDedupe.js"
import { createTestPrefix } from "../support/redis.js"

/*
 * The ingress's dedupe hint remembers recent update ids per bot in bounded space: a redelivery
 * within the window is recognised, a new id never is, and however many updates a bot gets the
 * store holds at most EDGE_DEDUPE_IDS ids of it (about 160 KB), gone once the bot falls silent.
 */

const t = createTestPrefix("dedupe")
const redis = new Redis(t.url)
afterAll(async () => {
  redis.disconnect()
  await t.cleanup()
})
const run = <A>(e: Effect.Effect<A, unknown>) => Effect.runPromise(e)
const hour = 3_600_000

const stores: ReadonlyArray<readonly [string, (now: () => number) => UpdateDedupe]> = [
  ["Redis", (now) => redisUpdateDedupe(redis, t.prefix, 16, now)],
  ["memory", (now) => memoryUpdateDedupe(now)]
]

describe.each(stores)("edge dedupe in %s", (name, make) => {
  it("recognises a redelivery, never a new id, and keeps bots apart", async () => {
    let clock = 1_000_000
    const d = make(() => clock)
    const bot = `b-${name}-1`
    expect(await run(d.seen(bot, 7))).toBe(false)
    await run(d.remember(bot, 7))
    clock += 23 * hour
    expect(await run(d.seen(bot, 7))).toBe(true)
    expect(await run(d.seen(bot, 8))).toBe(false)
    expect(await run(d.seen(`${bot}-other`, 7))).toBe(false)
    // past 25 h the id is forgotten (Telegram no longer redelivers it)
    clock += 3 * hour
    expect(await run(d.seen(bot, 7))).toBe(false)
  })

  it("holds at most EDGE_DEDUPE_IDS ids of a busy bot: the newest", async () => {
    let clock = 5_000_000
    const d = make(() => clock)
    const bot = `b-${name}-busy`
    const total = EDGE_DEDUPE_IDS + 500
    for (let id = 1; id <= total; id++) {
      clock++
      await run(d.remember(bot, id))
    }
    expect(await run(d.seen(bot, total))).toBe(true)
    expect(await run(d.seen(bot, total - EDGE_DEDUPE_IDS + 1))).toBe(true)
    expect(await run(d.seen(bot, total - EDGE_DEDUPE_IDS))).toBe(false)
    expect(await run(d.seen(bot, 1))).toBe(false)
    if (name === "Redis") {
      const keys = await redis.keys(`${t.prefix}:*seen:${bot}*`)
      expect(keys).toHaveLength(1)
      expect(await redis.zcard(keys[0]!)).toBe(EDGE_DEDUPE_IDS)
      // a bot that falls silent leaves nothing behind after the window
      const ttl = await redis.pttl(keys[0]!)
      expect(ttl).toBeGreaterThan(0)
      expect(ttl).toBeLessThanOrEqual(DEDUPE_TTL_S * 1000)
    }
  }, 60_000)
})
