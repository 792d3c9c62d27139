import { randomBytes } from "node:crypto"
import { createServer } from "node:net"
import { mkdtemp, readdir, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { UNAUTHORIZED_REASON } from "../../src/actors/actor.js"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import { createTestDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"
import { count, eventTypes, fleetEnv, registerOn, replies, say, startTestNode } from "./support.js"
import type { TestNode } from "./support.js"

const redis = createTestPrefix("runtime")
let db: { url: string; drop: () => Promise<void> }
let dataDir: string
let running: TestNode | null = null
const cleanups: Array<() => Promise<void>> = []
/** One fleet key for the suite: every node of a fleet shares it (the demo bots' tokens are sealed with it). */
const secretKey = randomBytes(32).toString("base64")

beforeAll(async () => {
  db = await createTestDatabase("runtime")
  dataDir = await mkdtemp(join(tmpdir(), "bf-runtime-prod-"))
})
afterAll(async () => {
  await running?.stop()
  for (const c of cleanups) await c()
  await db.drop()
  await redis.cleanup()
  await rm(dataDir, { recursive: true, force: true })
})

describe("production runtime: REDIS_URL + DATABASE_URL", () => {
  it("runs the demo fleet on Redis and Postgres, answers through the sandbox, and keeps state across a restart", async () => {
    const env = fleetEnv({ db, redis, secretKey, dataDir })
    running = await startTestNode(env)
    expect(running.node.config.mode).toBe("production")
    await say(running.node, "clerk_demo_bot", { userId: 5, firstName: "Cy", text: "/start" })
    await expect.poll(() => replies(running!.node, "clerk_demo_bot", 5), { timeout: 20_000 }).toEqual([
      "Good day, Cy. How may I assist you?\n\n— The Clerk"
    ])
    // the AI demo bot, on a worker thread, calls the node's offline model stub
    await say(running.node, "sage_demo_bot", { userId: 5, firstName: "Cy", text: "How do you work?" })
    await expect.poll(() => replies(running!.node, "sage_demo_bot", 5), { timeout: 20_000 }).toEqual([expect.stringContaining('You said: "How do you work?"')])
    await running.stop()

    running = await startTestNode(env)
    const node = running.node
    await say(node, "clerk_demo_bot", { userId: 5, firstName: "Cy", text: "/start" })
    await expect.poll(() => replies(node, "clerk_demo_bot", 5), { timeout: 20_000 }).toEqual(["Welcome back, Cy!\n\n— The Clerk"])
    // the reply arrives before the update's last step (its outcome and UpdateReceived) is appended
    await expect.poll(async () => count(await eventTypes(node.stores.log, "demo-clerk"), "UpdateReceived"), { timeout: 10_000 }).toBe(2)
    const types = await eventTypes(node.stores.log, "demo-clerk")
    expect(count(types, "BotRegistered")).toBe(1)
    expect(count(types, "UpdateReceived")).toBe(2)
    expect(count(types, "BotApiCallSucceeded")).toBe(2)
    // nothing of embedded mode was created: the data lives in Redis and Postgres
    expect(await readdir(dataDir)).toEqual([])
    const bots = () => node.stores.sql.query<{ n: number }>("SELECT count(*)::int AS n FROM bots WHERE bot_id LIKE 'demo-%'").then((r) => r.rows[0]?.n)
    await expect.poll(bots, { timeout: 15_000 }).toBe(4)
    await running.stop()
    running = null
  }, 120_000)

  it("runs a bot in polling mode against TELEGRAM_API_ROOT, and a restart neither loses nor re-handles updates", async () => {
    // a second sandbox stands in for Telegram itself
    const telegram = await startSandbox()
    try {
      const tgBot = telegram.world.createBot({ username: "polling_shop_bot" })
      const env = fleetEnv({ db, redis, secretKey, dataDir }, { TELEGRAM_API_ROOT: telegram.apiRoot })
      running = await startTestNode(env)
      const { node } = running
      const registered = await registerOn(node, { botId: "poll-shop", ownerId: "o1", name: "Shop", kind: "builtin", mode: "polling", token: Redacted.make(tgBot.token), config: { keywords: [{ match: "ping", reply: "pong" }] } })
      expect(registered).toBe(true)
      await Effect.runPromise(node.startBot("poll-shop"))
      telegram.world.say("polling_shop_bot", { userId: 3, text: "ping" })
      const texts = () => telegram.world.messages("polling_shop_bot", 3).map((m) => m.text)
      await expect.poll(texts, { timeout: 20_000 }).toEqual(["pong"])
      await running.stop()

      telegram.world.say("polling_shop_bot", { userId: 3, text: "ping while down" })
      running = await startTestNode(env) // the bot is in the fleet directory now: started with the node
      await expect.poll(texts, { timeout: 20_000 }).toEqual(["pong", "pong"])
      telegram.world.say("polling_shop_bot", { userId: 3, text: "ping again" })
      await expect.poll(texts, { timeout: 20_000 }).toEqual(["pong", "pong", "pong"])
      await expect.poll(async () => count(await eventTypes(running!.node.stores.log, "poll-shop"), "UpdateReceived"), { timeout: 10_000 }).toBe(3)
      await running.stop()
      running = null
    } finally {
      await telegram.close()
    }
  }, 120_000)
  it("runs an owner's own Composer module (BOT_MODULES) on the worker threads: its calls get Telegram's real results", async () => {
    // a fleet of its own: the bots the other tests listed would start here too
    const ownDb = await createTestDatabase("runtime-modules")
    const ownRedis = createTestPrefix("runtime-modules")
    cleanups.push(() => ownDb.drop(), () => ownRedis.cleanup())
    const env = fleetEnv({ db: ownDb, redis: ownRedis, secretKey, dataDir }, { BOT_MODULES: fileURLToPath(new URL("./fixtures/ownerBots.ts", import.meta.url)) })
    running = await startTestNode(env)
    const { node } = running
    expect(node.actorThreads).toBe(2)
    const sb = node.sandbox!.world.createBot({ username: "counter_bot" })
    await registerOn(node, { botId: "counter", ownerId: "o1", name: "counter_bot", kind: "counter", mode: "sandbox", token: Redacted.make(sb.token), config: { prefix: "seen" } })
    await Effect.runPromise(node.startBot("counter"))
    await say(node, "counter_bot", { userId: 9, text: "hello" })
    await expect.poll(() => replies(node, "counter_bot", 9), { timeout: 20_000 }).toEqual(["seen 1: 5 letters"])
    await say(node, "counter_bot", { userId: 9, text: "hi" })
    await expect.poll(() => replies(node, "counter_bot", 9), { timeout: 20_000 }).toEqual(["seen 1: 5 letters", "seen 2: 2 letters"])
    await running.stop()
    running = null
  }, 120_000)

  it("refuses to start with a BOT_MODULES entry that does not load, naming it", async () => {
    const env = fleetEnv({ db, redis, secretKey, dataDir }, { BOT_MODULES: "./no/such/module.js" })
    await expect(startTestNode(env)).rejects.toThrow(/no\/such\/module\.js/)
  }, 60_000)

  it("stops a webhook-mode bot once, with a BotStopped naming the 401, when setWebhook refuses its token", async () => {
    const telegram = await startSandbox()
    try {
      const tgBot = telegram.world.createBot({ username: "revoked_hook_bot" })
      const env = fleetEnv({ db, redis, secretKey, dataDir }, { TELEGRAM_API_ROOT: telegram.apiRoot, PUBLIC_URL: "http://127.0.0.1:9/" })
      running = await startTestNode(env)
      const { node } = running
      await registerOn(node, { botId: "revoked-hook", ownerId: "o1", name: "Revoked", kind: "builtin", mode: "webhook", token: Redacted.make(tgBot.token), config: {} })
      telegram.world.revoke("revoked_hook_bot")
      await Effect.runPromise(node.startBot("revoked-hook"))
      await expect.poll(async () => count(await eventTypes(node.stores.log, "revoked-hook"), "BotStopped"), { timeout: 20_000 }).toBe(1)
      await expect.poll(async () => (await Effect.runPromise(node.supervisor.status("revoked-hook")))?.state, { timeout: 10_000 }).toBe("stopped")
      // no restart loop: a while later it is still one stop, and not a crash nor a give-up
      await new Promise((r) => setTimeout(r, 3000))
      const events = await Effect.runPromise(node.stores.log.readStream("revoked-hook"))
      expect(events.filter((e) => e.data._tag === "BotStopped").map((e) => (e.data as { reason: string }).reason)).toEqual([UNAUTHORIZED_REASON])
      expect(events.map((e) => e.type).filter((t) => t === "BotCrashed" || t === "BotGaveUp" || t === "UpdateReceived")).toEqual([])
      await running.stop()
      // the next start of a node does not try it again: it waits for a new token
      running = await startTestNode(env)
      await new Promise((r) => setTimeout(r, 2000))
      expect(count(await eventTypes(running.node.stores.log, "revoked-hook"), "BotStarted")).toBe(1)
      await running.stop()
      running = null
    } finally {
      await telegram.close()
    }
  }, 120_000)

  it("registers a webhook-mode bot at PUBLIC_URL with its secret, and answers what Telegram delivers there", async () => {
    const telegram = await startSandbox()
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as { port: number }
        probe.close(() => resolve(port))
      })
    })
    try {
      const tgBot = telegram.world.createBot({ username: "hook_shop_bot" })
      const env = fleetEnv({ db, redis, secretKey, dataDir }, { TELEGRAM_API_ROOT: telegram.apiRoot, HTTP_PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}/` })
      running = await startTestNode(env)
      const { node } = running
      await registerOn(node, { botId: "hook-shop", ownerId: "o1", name: "Hook", kind: "builtin", mode: "webhook", token: Redacted.make(tgBot.token), config: { keywords: [{ match: "ping", reply: "pong" }] } })
      await Effect.runPromise(node.startBot("hook-shop"))
      telegram.world.say("hook_shop_bot", { userId: 4, text: "ping" })
      const texts = () => telegram.world.messages("hook_shop_bot", 4).map((m) => m.text)
      await expect.poll(texts, { timeout: 20_000 }).toEqual(["pong"])
      const info = (await (await fetch(`${telegram.apiRoot}/bot${tgBot.token}/getWebhookInfo`)).json()) as { result: { url: string } }
      expect(info.result.url).toBe(`http://127.0.0.1:${port}/telegram/hook-shop`)
      // a forged delivery to the same URL is refused: the secret registered with setWebhook is required
      const forged = await fetch(`http://127.0.0.1:${port}/telegram/hook-shop`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": "not-the-secret" },
        body: JSON.stringify({ update_id: 999, message: { message_id: 1, date: 1, chat: { id: 4, type: "private" }, text: "ping" } })
      })
      expect(forged.status).toBe(401)
      await running.stop()
      running = null
    } finally {
      await telegram.close()
    }
  }, 120_000)
})
