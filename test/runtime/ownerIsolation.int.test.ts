import { randomBytes } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createTestDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"
import { count, eventTypes, fleetEnv, registerOn, replies, say, startTestNode } from "./support.js"
import type { TestNode } from "./support.js"

/*
 * An owner's own bot kind (BOT_MODULES) that kills its worker thread (process.exit, an uncaught
 * throw, an exhausted heap) takes down that owner's bots only: another owner's bot of a custom
 * kind, and a bot of the built-in kind, keep answering without a restart (OWNER_THREADS).
 */

const redis = createTestPrefix("owner-isolation")
let db: { url: string; drop: () => Promise<void> }
let dataDir: string
let running: TestNode | null = null
const token = randomBytes(6).toString("hex")

beforeAll(async () => {
  db = await createTestDatabase("owner_isolation")
  dataDir = await mkdtemp(join(tmpdir(), "bf-owner-isolation-"))
})
afterAll(async () => {
  await running?.stop()
  // the fixture's once-per-token markers
  await Promise.all(["exit", "throw", "oom"].map((how) => rm(join(tmpdir(), `botfleet-hostile-${how}-${token}`), { force: true })))
  await db.drop()
  await redis.cleanup()
  await rm(dataDir, { recursive: true, force: true })
})

describe("owners' code on threads of their own", () => {
  it("a bot whose code kills its thread three ways restarts alone; other owners' bots answer throughout, never restarted", async () => {
    const env = fleetEnv(
      { db, redis, secretKey: randomBytes(32).toString("base64"), dataDir },
      { BOT_MODULES: fileURLToPath(new URL("./fixtures/hostileBots.ts", import.meta.url)), WORKER_THREADS: "1", OWNER_THREADS: "4", OWNER_THREAD_HEAP_MB: "64" }
    )
    running = await startTestNode(env)
    const { node } = running
    const bots = [
      { botId: "hostile-a", ownerId: "owner-a", kind: "hostile", username: "hostile_a_bot" },
      { botId: "calm-b", ownerId: "owner-b", kind: "hostile", username: "calm_b_bot" },
      { botId: "builtin-a", ownerId: "owner-a", kind: "builtin", username: "builtin_a_bot" }
    ]
    for (const b of bots) {
      const sb = node.sandbox!.world.createBot({ username: b.username })
      const config = b.kind === "builtin" ? { keywords: [{ match: "hi", reply: "hello" }] } : {}
      await registerOn(node, { botId: b.botId, ownerId: b.ownerId, name: b.username, kind: b.kind, mode: "sandbox", token: Redacted.make(sb.token), config })
      await Effect.runPromise(node.startBot(b.botId))
    }
    const chat = { userId: 7 }
    await say(node, "calm_b_bot", { ...chat, text: "warm-up" })
    await expect.poll(() => replies(node, "calm_b_bot", 7), { timeout: 30_000 }).toEqual(["ok warm-up"])

    const calmAnswers: string[] = ["ok warm-up"]
    const builtinAnswers: string[] = []
    let crashes = 0
    for (const how of ["exit", "throw", "oom"]) {
      await say(node, "hostile_a_bot", { ...chat, text: `${how}:${token}` })
      // while owner a's thread dies and its bot restarts, the others are asked and answer
      await say(node, "calm_b_bot", { ...chat, text: `during ${how}` })
      await say(node, "builtin_a_bot", { ...chat, text: "hi" })
      calmAnswers.push(`ok during ${how}`)
      builtinAnswers.push("hello")
      crashes++
      await expect.poll(async () => count(await eventTypes(node.stores.log, "hostile-a"), "BotCrashed"), { timeout: 60_000 }).toBe(crashes)
      // after its restart the same text is handled normally (the crash was once per token)
      await expect.poll(() => replies(node, "hostile_a_bot", 7), { timeout: 60_000 }).toContain(`ok ${how}:${token}`)
      await expect.poll(() => replies(node, "calm_b_bot", 7), { timeout: 30_000 }).toEqual(calmAnswers)
      await expect.poll(() => replies(node, "builtin_a_bot", 7), { timeout: 30_000 }).toEqual(builtinAnswers)
    }
    const hostile = await Effect.runPromise(node.stores.log.readStream("hostile-a"))
    const reasons = hostile.filter((e) => e.data._tag === "BotCrashed").map((e) => (e.data as { reason: string }).reason)
    expect(reasons).toHaveLength(3)
    for (const r of reasons) expect(r).toMatch(/thread/)
    // the other owner's bot and the built-in bot were never restarted
    for (const botId of ["calm-b", "builtin-a"]) {
      const types = await eventTypes(node.stores.log, botId)
      expect(count(types, "BotCrashed"), botId).toBe(0)
      expect(count(types, "BotStarted"), botId).toBe(1)
    }
    expect((await Effect.runPromise(node.supervisor.status("calm-b")))?.restarts).toBe(0)
    await running.stop()
    running = null
  }, 240_000)
})
