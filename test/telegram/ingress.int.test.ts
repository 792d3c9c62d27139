import { randomBytes } from "node:crypto"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeRedisInbox } from "../../src/actors/redisInbox.js"
import type { InboxService } from "../../src/actors/inbox.js"
import { makeBotApi } from "../../src/telegram/botApi.js"
import { registerWebhook, startIngress } from "../../src/telegram/ingress.js"
import type { Ingress } from "../../src/telegram/ingress.js"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { redisUpdateDedupe } from "../../src/telegram/updateDedupe.js"
import { webhookSecretFor } from "../../src/telegram/webhookSecret.js"
import { createTestPrefix } from "../support/redis.js"

/** Generous: the CI machine may be busy; polls end as soon as the condition holds. */
const POLL = { timeout: 15_000 }

const key = randomBytes(32)
const running = new Set(["shop", "other"])
const stopped = new Set(["sleepy"])
const botStatus = (botId: string) => Effect.succeed(running.has(botId) ? "running" as const : stopped.has(botId) ? "stopped" as const : "unknown" as const)

let sandbox: Sandbox
let ingress: Ingress
let inbox: InboxService
let redis: Redis
const t = createTestPrefix("ingress")

beforeAll(async () => {
  sandbox = await startSandbox({ webhookRetryMs: 20 })
  redis = new Redis(t.url)
  inbox = makeRedisInbox({ redis, prefix: t.prefix })
  ingress = await startIngress({ inbox, botStatus, secretFor: (id) => webhookSecretFor(key, id), dedupe: redisUpdateDedupe(redis, t.prefix) })
})
afterAll(async () => {
  await ingress.close()
  await sandbox.close()
  await Effect.runPromise(inbox.close)
  await t.cleanup()
  redis.disconnect()
})

const entries = (botId: string) => Effect.runPromise(inbox.readAfter(botId, null, 100))

const post = (botId: string, body: string, secret: string | null = webhookSecretFor(key, botId), contentType = "application/json") =>
  fetch(`${ingress.url}/telegram/${botId}`, {
    method: "POST",
    headers: { "content-type": contentType, ...(secret !== null ? { "x-telegram-bot-api-secret-token": secret } : {}) },
    body
  })

const update = (id: number) => JSON.stringify({ update_id: id, message: { message_id: id, date: 0, chat: { id: 1, type: "private" }, text: "hi" } })

describe("webhook ingress", () => {
  it("puts the sandbox's webhook deliveries in the bot's inbox, in order", async () => {
    const bot = sandbox.world.createBot({ username: "shop_ingress_bot" })
    await Effect.runPromise(registerWebhook(makeBotApi(bot.token, { apiRoot: sandbox.apiRoot }), { publicUrl: ingress.url, botId: "shop", secret: webhookSecretFor(key, "shop"), allowedUpdates: ["message", "callback_query"] }))
    for (const text of ["one", "two", "three"]) sandbox.world.say("shop_ingress_bot", { userId: 5, text })
    await expect.poll(async () => (await entries("shop")).length, POLL).toBe(3)
    expect((await entries("shop")).map((e) => (e.update as { message: { text: string } }).message.text)).toEqual(["one", "two", "three"])
    await expect.poll(() => bot.pending.length, POLL).toBe(0)
  })

  it("answers a forged or missing secret 401 and writes nothing", async () => {
    expect((await post("other", update(1), "forged")).status).toBe(401)
    expect((await post("other", update(1), null)).status).toBe(401)
    expect((await post("other", update(1), webhookSecretFor(key, "shop"))).status).toBe(401)
    expect(await entries("other")).toHaveLength(0)
  })

  it("answers a 2 MB body 413, broken JSON 400, a non-update 400 with the reason, and writes nothing", async () => {
    const big = JSON.stringify({ update_id: 1, message: { message_id: 1, chat: { id: 1 }, text: "x".repeat(2 * 1024 * 1024) } })
    expect((await post("other", big)).status).toBe(413)
    const broken = await post("other", "{\"update_id\": 1, ")
    expect(broken.status).toBe(400)
    const shape = await post("other", JSON.stringify({ update_id: "x" }))
    expect(shape.status).toBe(400)
    expect(await shape.json()).toEqual({ ok: false, error: "update_id must be a non-negative integer" })
    const empty = await post("other", JSON.stringify({ update_id: 3 }))
    expect(((await empty.json()) as { error: string }).error).toMatch(/no content/)
    expect(await entries("other")).toHaveLength(0)
  })

  it("answers an unknown or stopped bot 404 and writes nothing", async () => {
    expect((await post("ghost", update(1))).status).toBe(404)
    expect((await post("sleepy", update(1))).status).toBe(404)
    expect(await entries("ghost")).toHaveLength(0)
    expect(await entries("sleepy")).toHaveLength(0)
  })

  it("stores a redelivered update once", async () => {
    expect((await post("other", update(77))).status).toBe(200)
    expect((await post("other", update(77))).status).toBe(200)
    expect(await entries("other")).toHaveLength(1)
  })

  it("answers 503 when the inbox store is unreachable, so Telegram delivers again", async () => {
    const dead = new Redis("redis://127.0.0.1:1", { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null })
    const deadInbox = makeRedisInbox({ redis: dead, prefix: t.prefix })
    const down = await startIngress({ inbox: deadInbox, botStatus, secretFor: (id) => webhookSecretFor(key, id) })
    try {
      const res = await fetch(`${down.url}/telegram/other`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": webhookSecretFor(key, "other") },
        body: update(5)
      })
      expect(res.status).toBe(503)
    } finally {
      await down.close()
      dead.disconnect()
    }
  })
})
