import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, Exit, Fiber } from "effect"
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeBotApi } from "../../src/telegram/botApi.js"
import { runPoller } from "../../src/telegram/poller.js"
import { redisOffsetStore } from "../../src/telegram/redisOffsetStore.js"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { createTestPrefix } from "../support/redis.js"

/** Generous: the CI machine may be busy; polls end as soon as the condition holds. */
const POLL = { timeout: 15_000 }

const t = createTestPrefix("poller")
let sandbox: Sandbox
let redis: Redis
beforeAll(async () => {
  sandbox = await startSandbox()
  redis = new Redis(t.url)
})
afterAll(async () => {
  await sandbox.close()
  await t.cleanup()
  redis.disconnect()
})

const textOf = (u: unknown) => (u as { message: { text: string } }).message.text

describe("long polling", () => {
  it("persists the offset: a restarted poller neither loses nor re-fetches updates", async () => {
    const bot = sandbox.world.createBot({ username: "offset_bot" })
    const api = makeBotApi(bot.token, { apiRoot: sandbox.apiRoot })
    const offsets = redisOffsetStore(redis, t.prefix)
    const got: string[] = []
    const poll = () =>
      Effect.runFork(runPoller({ botId: "offset", api, offsets, timeoutS: 1, deliver: (us) => Effect.sync(() => void got.push(...us.map(textOf))) }))
    let fiber = poll()
    sandbox.world.say("offset_bot", { userId: 1, text: "a" })
    sandbox.world.say("offset_bot", { userId: 1, text: "b" })
    await expect.poll(() => got.length, POLL).toBe(2)
    await Effect.runPromise(Fiber.interrupt(fiber))
    sandbox.world.say("offset_bot", { userId: 1, text: "c" })
    fiber = poll()
    await expect.poll(() => got.length, POLL).toBe(3)
    sandbox.world.say("offset_bot", { userId: 1, text: "d" })
    await expect.poll(() => got.length, POLL).toBe(4)
    await Effect.runPromise(Fiber.interrupt(fiber))
    expect(got).toEqual(["a", "b", "c", "d"])
  })

  it("keeps updates that could not be stored, and delivers them again", async () => {
    const bot = sandbox.world.createBot({ username: "retry_store_bot" })
    const api = makeBotApi(bot.token, { apiRoot: sandbox.apiRoot })
    let failures = 1
    const got: string[] = []
    const fiber = Effect.runFork(
      runPoller({
        botId: "retry-store",
        api,
        offsets: redisOffsetStore(redis, t.prefix),
        timeoutS: 1,
        backoffMs: 20,
        deliver: (us) => (failures-- > 0 ? Effect.fail("inbox down") : Effect.sync(() => void got.push(...us.map(textOf))))
      })
    )
    sandbox.world.say("retry_store_bot", { userId: 1, text: "kept" })
    await expect.poll(() => got, POLL).toEqual(["kept"])
    await Effect.runPromise(Fiber.interrupt(fiber))
  })

  it("stops for good on a revoked token instead of looping", async () => {
    const bot = sandbox.world.createBot({ username: "gone_bot" })
    sandbox.world.revoke("gone_bot")
    const exit = await Effect.runPromiseExit(
      runPoller({ botId: "gone", api: makeBotApi(bot.token, { apiRoot: sandbox.apiRoot }), offsets: redisOffsetStore(redis, t.prefix), deliver: () => Effect.void })
    )
    expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain("PollingUnauthorized")
  })

  it("deletes a webhook left from webhook mode before polling, keeping its pending updates (as telegraf's launch does)", async () => {
    const bot = sandbox.world.createBot({ username: "was_webhook_bot" })
    const api = makeBotApi(bot.token, { apiRoot: sandbox.apiRoot })
    // the bot ran on webhooks: the webhook is still set, and nobody answers at its URL
    await Effect.runPromise(api.call("setWebhook", { url: "http://127.0.0.1:9/telegram/gone" }))
    sandbox.world.say("was_webhook_bot", { userId: 1, text: "sent while on webhooks" })
    const got: string[] = []
    const fiber = Effect.runFork(
      runPoller({ botId: "was-webhook", api, offsets: redisOffsetStore(redis, t.prefix), timeoutS: 1, deliver: (us) => Effect.sync(() => void got.push(...us.map(textOf))) })
    )
    await expect.poll(() => got, POLL).toEqual(["sent while on webhooks"])
    sandbox.world.say("was_webhook_bot", { userId: 1, text: "after" })
    await expect.poll(() => got, POLL).toEqual(["sent while on webhooks", "after"])
    await Effect.runPromise(Fiber.interrupt(fiber))
  })

  it("ends with PollingConflict when getUpdates keeps answering 409 (a webhook set again behind its back)", async () => {
    const bot = sandbox.world.createBot({ username: "conflict_bot" })
    const api = makeBotApi(bot.token, { apiRoot: sandbox.apiRoot })
    const errors: unknown[] = []
    const fiber = Effect.runFork(
      runPoller({ botId: "conflict", api, offsets: redisOffsetStore(redis, t.prefix), timeoutS: 1, backoffMs: 10, deliver: () => Effect.void, onError: (e) => errors.push(e) })
    )
    // polling works, then another program sets a webhook on the same token
    await expect.poll(() => bot.poller !== null, POLL).toBe(true)
    await Effect.runPromise(api.call("setWebhook", { url: "http://127.0.0.1:9/elsewhere" }))
    const exit = await Effect.runPromise(Fiber.await(fiber))
    expect(Exit.isFailure(exit)).toBe(true)
    const text = JSON.stringify(exit)
    expect(text).toContain("PollingConflict")
    expect(text).toContain("can't use getUpdates method while webhook is active")
    expect(errors.length).toBeGreaterThanOrEqual(2)
  })

  it("stops promptly in the middle of a long poll", async () => {
    const bot = sandbox.world.createBot({ username: "idle_bot" })
    const fiber = Effect.runFork(
      runPoller({ botId: "idle", api: makeBotApi(bot.token, { apiRoot: sandbox.apiRoot }), offsets: redisOffsetStore(redis, t.prefix), timeoutS: 50, deliver: () => Effect.void })
    )
    await expect.poll(() => bot.poller !== null, POLL).toBe(true)
    // a 50 s poll is in flight; the interrupt aborts it (the test would time out otherwise)
    await Effect.runPromise(Fiber.interrupt(fiber))
    await expect.poll(() => bot.poller, POLL).toBeNull()
  })

  it("does not spin when a server answers getUpdates at once, and backs off on errors", async () => {
    let requests = 0
    let failing = false
    const server = createServer((req, res) => {
      requests++
      req.resume()
      req.on("end", () => {
        res.setHeader("content-type", "application/json")
        if (failing) {
          res.statusCode = 502
          return res.end(JSON.stringify({ ok: false, error_code: 502, description: "Bad Gateway" }))
        }
        res.end(JSON.stringify({ ok: true, result: [] }))
      })
    })
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
    const root = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      const errors: unknown[] = []
      const fiber = Effect.runFork(
        runPoller({ botId: "spin", api: makeBotApi("1:x", { apiRoot: root }), offsets: redisOffsetStore(redis, t.prefix), timeoutS: 30, minEmptyPollMs: 250, backoffMs: 100, deliver: () => Effect.void, onError: (e) => errors.push(e) })
      )
      await new Promise((r) => setTimeout(r, 1000))
      // an unguarded loop would have made thousands of requests in that second
      expect(requests).toBeLessThanOrEqual(6)
      failing = true
      requests = 0
      await new Promise((r) => setTimeout(r, 1000))
      expect(requests).toBeLessThanOrEqual(6)
      expect(errors.length).toBeGreaterThan(0)
      await Effect.runPromise(Fiber.interrupt(fiber))
    } finally {
      await new Promise((r) => server.close(r))
    }
  })
})
