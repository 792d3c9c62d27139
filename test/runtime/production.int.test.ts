import { randomBytes } from "node:crypto"
import { mkdtemp, readdir, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createTestDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"
import { count, eventTypes, replies, say, startTestNode } from "./support.js"
import type { TestNode } from "./support.js"

const redis = createTestPrefix("runtime")
let db: { url: string; drop: () => Promise<void> }
let dataDir: string
let running: TestNode | null = null

beforeAll(async () => {
  db = await createTestDatabase("runtime")
  dataDir = await mkdtemp(join(tmpdir(), "bf-runtime-prod-"))
})
afterAll(async () => {
  await running?.stop()
  await db.drop()
  await redis.cleanup()
  await rm(dataDir, { recursive: true, force: true })
})

describe("production runtime: REDIS_URL + DATABASE_URL", () => {
  it("runs the demo fleet on Redis and Postgres, answers through the sandbox, and keeps state across a restart", async () => {
    const env = {
      DATABASE_URL: db.url,
      REDIS_URL: redis.url,
      REDIS_PREFIX: redis.prefix,
      BOTFLEET_SECRET_KEY: randomBytes(32).toString("base64"),
      DATA_DIR: dataDir
    }
    running = await startTestNode(env)
    expect(running.node.config.mode).toBe("production")
    await say(running.node, "clerk_demo_bot", { userId: 5, firstName: "Cy", text: "/start" })
    await expect.poll(() => replies(running!.node, "clerk_demo_bot", 5), { timeout: 20_000 }).toEqual([
      "Good day, Cy. How may I assist you? I am The Clerk.\n\n— The Clerk"
    ])
    await running.stop()

    running = await startTestNode(env)
    const node = running.node
    await say(node, "clerk_demo_bot", { userId: 5, firstName: "Cy", text: "/start" })
    await expect.poll(() => replies(node, "clerk_demo_bot", 5), { timeout: 20_000 }).toEqual(["Welcome back, Cy!\n\n— The Clerk"])
    const types = await eventTypes(node.stores.log, "demo-clerk")
    expect(count(types, "BotRegistered")).toBe(1)
    expect(count(types, "UpdateReceived")).toBe(2)
    expect(count(types, "BotApiCallSucceeded")).toBe(2)
    // nothing of embedded mode was created: the data lives in Redis and Postgres
    expect(await readdir(dataDir)).toEqual([])
    const bots = () => node.stores.sql.query<{ n: number }>("SELECT count(*)::int AS n FROM bots WHERE bot_id LIKE 'demo-%'").then((r) => r.rows[0]?.n)
    await expect.poll(bots, { timeout: 15_000 }).toBe(3)
    await running.stop()
    running = null
  }, 120_000)
})
