import { randomBytes } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { createTestDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"
import { count, eventTypes, fleetEnv, registerOn, startTestNode } from "./support.js"
import type { TestNode } from "./support.js"

/*
 * Two production nodes share one fleet (Redis + Postgres) through leases: a bot runs on one of
 * them; when that node stops, the other takes the bot over and goes on where it left off, with no
 * update lost or answered twice. A second sandbox stands in for Telegram (polling bot).
 */

const redis = createTestPrefix("failover")
let db: { url: string; drop: () => Promise<void> }
let dataDir: string
let telegram: Sandbox
const nodes: Array<TestNode> = []
const secretKey = randomBytes(32).toString("base64")

beforeAll(async () => {
  db = await createTestDatabase("failover")
  dataDir = await mkdtemp(join(tmpdir(), "bf-failover-"))
  telegram = await startSandbox()
})
afterAll(async () => {
  for (const n of nodes) await n.stop().catch(() => undefined)
  await telegram.close()
  await db.drop()
  await redis.cleanup()
  await rm(dataDir, { recursive: true, force: true })
})

describe("two nodes, one fleet", () => {
  it("hands a bot over when its node stops: the other node goes on, nothing lost or answered twice", async () => {
    const tgBot = telegram.world.createBot({ username: "shared_shop_bot" })
    const env = (nodeId: string) =>
      fleetEnv({ db, redis, secretKey, dataDir }, { TELEGRAM_API_ROOT: telegram.apiRoot, NODE_ID: nodeId, LEASE_TTL_MS: "2000", LEASE_RENEW_MS: "500" })
    const a = await startTestNode(env("node-a"))
    nodes.push(a)
    await registerOn(a.node, { botId: "shared", ownerId: "o1", name: "Shared", kind: "builtin", mode: "polling", token: Redacted.make(tgBot.token), config: { keywords: [{ match: "ping", reply: "pong" }] } })
    await Effect.runPromise(a.node.startBot("shared"))
    const state = (n: TestNode) => Effect.runPromise(n.node.supervisor.status("shared")).then((s) => s?.state)
    await expect.poll(() => state(a), { timeout: 20_000 }).toBe("running")

    // node b starts with the bot in the fleet directory: it waits, node a holds the lease
    const b = await startTestNode(env("node-b"))
    nodes.push(b)
    await expect.poll(() => state(b), { timeout: 10_000 }).toBe("waiting")

    const texts = () => telegram.world.messages("shared_shop_bot", 21).map((m) => m.text)
    telegram.world.say("shared_shop_bot", { userId: 21, text: "ping" })
    await expect.poll(texts, { timeout: 20_000 }).toEqual(["pong"])

    await a.stop()
    nodes.splice(nodes.indexOf(a), 1)
    // written while the bot changes hands: node b's poller fetches it once it holds the lease
    telegram.world.say("shared_shop_bot", { userId: 21, text: "ping again" })
    await expect.poll(() => state(b), { timeout: 20_000 }).toBe("running")
    await expect.poll(texts, { timeout: 20_000 }).toEqual(["pong", "pong"])
    telegram.world.say("shared_shop_bot", { userId: 21, text: "ping" })
    await expect.poll(texts, { timeout: 20_000 }).toEqual(["pong", "pong", "pong"])

    await expect.poll(async () => count(await eventTypes(b.node.stores.log, "shared"), "UpdateReceived"), { timeout: 10_000 }).toBe(3)
    const events = await Effect.runPromise(b.node.stores.log.readStream("shared"))
    const started = events.filter((e) => e.data._tag === "BotStarted").map((e) => (e.data as { nodeId: string }).nodeId)
    expect(started).toEqual(["node-a", "node-b"])
    expect(count(events.map((e) => e.type), "UpdateDuplicateDropped")).toBe(0)
  }, 120_000)
})
