import { randomBytes } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createTestDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"
import { count, fleetEnv, replies, say, startTestNode } from "./support.js"
import type { TestNode } from "./support.js"

/*
 * A production node trims its hot log as it runs (every second here, keeping 2 events a stream
 * and no age window), and a bot whose registration only the archive still holds starts again
 * after a restart and goes on where it was.
 */

const redis = createTestPrefix("runtime-trim")
let db: { url: string; drop: () => Promise<void> }
let dataDir: string
let running: TestNode | null = null
const secretKey = randomBytes(32).toString("base64")

beforeAll(async () => {
  db = await createTestDatabase("runtime_trim")
  dataDir = await mkdtemp(join(tmpdir(), "bf-runtime-trim-"))
})
afterAll(async () => {
  await running?.stop()
  await db.drop()
  await redis.cleanup()
  await rm(dataDir, { recursive: true, force: true })
})

describe("a node trims its hot log as it runs", () => {
  it("keeps the window in Redis, the rest in the archive, and runs a bot whose start is only archived after a restart", async () => {
    const env = fleetEnv(
      { db, redis, secretKey, dataDir },
      { WORKER_THREADS: "1", SNAPSHOT_EVERY: "5", HOT_LOG_EVENTS: "2", HOT_LOG_MAX_AGE: "0s", HOT_LOG_TRIM_INTERVAL_MS: "1000" }
    )
    running = await startTestNode(env)
    const { node } = running
    for (let i = 1; i <= 6; i++) {
      await say(node, "clerk_demo_bot", { userId: 9, firstName: "Di", text: `/start ${i}` })
      await expect.poll(async () => (await replies(node, "clerk_demo_bot", 9)).length, { timeout: 20_000 }).toBe(i)
    }
    const hotFirst = async () => (await Effect.runPromise(node.stores.hotLog.readStream("demo-clerk", { limit: 1 })))[0]?.version ?? 0
    // the registration (version 1) leaves Redis once archived and below a snapshot
    await expect.poll(hotFirst, { timeout: 30_000, interval: 500 }).toBeGreaterThan(1)
    const version = await Effect.runPromise(node.stores.hotLog.streamVersion("demo-clerk"))
    const partition = node.stores.hotLog.partitionOf("demo-clerk")
    const inPartition = async () => (await Effect.runPromise(node.stores.hotLog.readPartition(partition))).length
    // the partition log lets go of what the projectors acked and the archive holds
    await expect.poll(inPartition, { timeout: 30_000, interval: 500 }).toBeLessThan(version)
    // read through the archive, the stream is whole: every version from 1, none twice (the bot may
    // have recorded more since `version` was read)
    const events = await Effect.runPromise(node.stores.log.readStream("demo-clerk"))
    expect(events.length).toBeGreaterThanOrEqual(version)
    expect(events.map((e) => e.version)).toEqual(events.map((_, i) => i + 1))
    expect(count(events.map((e) => e.type), "BotRegistered")).toBe(1)
    await running.stop()

    running = await startTestNode(env)
    await say(running.node, "clerk_demo_bot", { userId: 9, firstName: "Di", text: "/start" })
    await expect.poll(async () => (await replies(running!.node, "clerk_demo_bot", 9)).at(-1), { timeout: 20_000 }).toBe("Welcome back, Di!\n\n— The Clerk")
    await running.stop()
    running = null
  }, 180_000)
})
