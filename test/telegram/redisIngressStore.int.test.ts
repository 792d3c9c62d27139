import { randomBytes } from "node:crypto"
import { Effect } from "effect"
import fc from "fast-check"
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeRedisInbox } from "../../src/actors/redisInbox.js"
import type { InboxService } from "../../src/actors/inbox.js"
import { startIngress } from "../../src/telegram/ingress.js"
import type { Ingress } from "../../src/telegram/ingress.js"
import { redisIngressStore } from "../../src/telegram/redisIngressStore.js"
import { EDGE_DEDUPE_IDS, dedupeKey, redisUpdateDedupe } from "../../src/telegram/updateDedupe.js"
import { webhookSecretFor } from "../../src/telegram/webhookSecret.js"
import { createTestPrefix } from "../support/redis.js"

/*
 * The production ingress path: dedupe check, inbox append and dedupe mark in one Redis script, on
 * an auto-pipelined connection. It must write exactly what the step-by-step path writes.
 */

const key = randomBytes(32)
const botStatus = (botId: string) => Effect.succeed(botId.startsWith("bot") ? ("running" as const) : ("unknown" as const))
const t = createTestPrefix("ingress-store")
let redis: Redis
let pipelined: Redis
let inbox: InboxService
let ingress: Ingress

beforeAll(async () => {
  redis = new Redis(t.url)
  pipelined = new Redis(t.url, { enableAutoPipelining: true })
  inbox = makeRedisInbox({ redis, prefix: t.prefix })
  ingress = await startIngress({ inbox, botStatus, secretFor: (id) => webhookSecretFor(key, id), store: redisIngressStore(pipelined, t.prefix) })
})
afterAll(async () => {
  await ingress.close()
  await Effect.runPromise(inbox.close)
  await t.cleanup()
  redis.disconnect()
  pipelined.disconnect()
})

const update = (id: number, text = "hi") => ({ update_id: id, message: { message_id: id, date: 0, chat: { id: 1, type: "private" }, text } })
const post = (botId: string, body: unknown, secret = webhookSecretFor(key, botId)) =>
  fetch(`${ingress.url}/telegram/${botId}`, { method: "POST", headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": secret }, body: JSON.stringify(body) })
const stored = async (botId: string) => (await Effect.runPromise(inbox.readAfter(botId, null, 10_000))).map((e) => e.update as { update_id: number; message: { text: string } })

describe("the Redis ingress store", () => {
  it("stores each update once, in order, however often Telegram delivers it, answering 2xx every time", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 40 }), async (ids) => {
        const bot = `bot${randomBytes(4).toString("hex")}`
        // sequential deliveries: the order the inbox keeps is the order of first delivery
        for (const id of ids) expect((await post(bot, update(id))).status).toBe(200)
        expect((await stored(bot)).map((u) => u.update_id)).toEqual([...new Set(ids)])
      }),
      { numRuns: 15 }
    )
  })

  it("takes concurrent deliveries of the same update once (one script per update: no check-then-act gap)", async () => {
    const statuses = await Promise.all(Array.from({ length: 20 }, () => post("botconcurrent", update(7)).then((r) => r.status)))
    expect(statuses.every((s) => s === 200)).toBe(true)
    expect(await stored("botconcurrent")).toHaveLength(1)
  })

  it("shares its marks with the step-by-step dedupe: an update remembered by either is a duplicate for both", async () => {
    const dedupe = redisUpdateDedupe(redis, t.prefix)
    await Effect.runPromise(dedupe.remember("botshared", 1))
    expect((await post("botshared", update(1))).status).toBe(200)
    expect(await stored("botshared")).toEqual([])
    expect((await post("botshared", update(2))).status).toBe(200)
    expect(await Effect.runPromise(dedupe.seen("botshared", 2))).toBe(true)
  })

  it("keeps the dedupe set bounded as the step-by-step dedupe does (the newest EDGE_DEDUPE_IDS ids)", async () => {
    const bounded = redisIngressStore(pipelined, t.prefix)
    await Promise.all(Array.from({ length: EDGE_DEDUPE_IDS + 50 }, (_, i) => bounded.accept("botmany", update(i + 1))))
    expect(await redis.zcard(dedupeKey(t.prefix)("botmany"))).toBe(EDGE_DEDUPE_IDS)
    expect(await redis.pttl(dedupeKey(t.prefix)("botmany"))).toBeGreaterThan(0)
    expect(await stored("botmany")).toHaveLength(EDGE_DEDUPE_IDS + 50)
  })

  it("refuses a forged secret 401 and a non-update 400, writing nothing (no mark either)", async () => {
    expect((await post("botbad", update(3), "forged")).status).toBe(401)
    expect((await post("botbad", { update_id: 4 })).status).toBe(400)
    expect(await stored("botbad")).toEqual([])
    expect(await redis.zscore(dedupeKey(t.prefix)("botbad"), "4")).toBeNull()
    expect((await post("botbad", update(4))).status).toBe(200)
    expect(await stored("botbad")).toHaveLength(1)
  })

  it("awaits a fleet directory that answers asynchronously (200 / 404, asked once per request), and answers 503 when it fails", async () => {
    let asked = 0
    const slowStatus = (botId: string) =>
      Effect.sleep("5 millis").pipe(
        Effect.tap(() => void asked++),
        Effect.zipRight(botId === "botbroken" ? Effect.fail("directory down") : Effect.succeed(botId.startsWith("bot") ? ("running" as const) : ("unknown" as const)))
      )
    const slow = await startIngress({ inbox, botStatus: slowStatus, secretFor: (id) => webhookSecretFor(key, id), store: redisIngressStore(pipelined, t.prefix) })
    const to = (botId: string) =>
      fetch(`${slow.url}/telegram/${botId}`, { method: "POST", headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": webhookSecretFor(key, botId) }, body: JSON.stringify(update(9)) }).then((r) => r.status)
    try {
      expect(await to("botslow")).toBe(200)
      expect(await to("nobody")).toBe(404)
      expect(await to("botbroken")).toBe(503)
      expect(asked).toBe(3)
      expect(await stored("botslow")).toHaveLength(1)
      expect(await stored("botbroken")).toEqual([])
    } finally {
      await slow.close()
    }
  })

  it("answers 503 when Redis is unreachable, so Telegram delivers again", async () => {
    const dead = new Redis("redis://127.0.0.1:1", { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null, enableAutoPipelining: true })
    dead.on("error", () => undefined)
    const down = await startIngress({ inbox, botStatus, secretFor: (id) => webhookSecretFor(key, id), store: redisIngressStore(dead, t.prefix) })
    try {
      const res = await fetch(`${down.url}/telegram/botdown`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": webhookSecretFor(key, "botdown") },
        body: JSON.stringify(update(5))
      })
      expect(res.status).toBe(503)
      expect(await stored("botdown")).toEqual([])
    } finally {
      await down.close()
      dead.disconnect()
    }
  })
})
