import { randomBytes } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { redisKeys } from "../../src/events/partition.js"
import { captureCli } from "../cli/support.js"
import { fleetEnv, replies, say, startTestNode } from "../runtime/support.js"
import type { TestNode } from "../runtime/support.js"
import { createTestDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"

/*
 * A real node in production mode (Redis log, Postgres, actors on a worker thread) running the demo
 * fleet: what users tell a bot reaches Redis sealed, and `botfleet users forget`, run from the
 * CLI while the node runs the bot, erases the user everywhere (the node hears it on the control
 * channel and runs the bot again) while the bot goes on answering everyone else.
 */

const redis = createTestPrefix("forget-running")
let db: { url: string; drop: () => Promise<void> }
let dir: string
let env: Record<string, string>
let running: TestNode
const BOT = "demo-sunny"
const USERNAME = "sunny_demo_bot"

const cli = (...argv: Array<string>) => captureCli(env, argv)
const waitFor = async (what: string, check: () => Promise<boolean>) => {
  for (let i = 0; i < 300; i++) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}

beforeAll(async () => {
  db = await createTestDatabase("forget_running")
  dir = await mkdtemp(join(tmpdir(), "bf-forget-running-"))
  env = fleetEnv({ db, redis, secretKey: randomBytes(32).toString("base64"), dataDir: dir }, { WORKER_THREADS: "1", LOG_LEVEL: "warning" })
  running = await startTestNode(env)
  await waitFor("the demo bot to run", async () => (await Effect.runPromise(running.node.supervisor.status(BOT)))?.state === "running")
}, 60_000)
afterAll(async () => {
  await running?.stop()
  await db.drop()
  await redis.cleanup()
  await rm(dir, { recursive: true, force: true })
})

describe("users forget while a node runs the bot (production mode)", () => {
  it("stores the user's words sealed in Redis, erases them on request, and the bot keeps answering", async () => {
    await say(running.node, USERNAME, { userId: 4242, firstName: "Zelda", text: "my secret diary" })
    await waitFor("a reply to Zelda", async () => (await replies(running.node, USERNAME, 4242)).length > 0)
    await waitFor("Zelda's projected row", async () => (await running.node.stores.sql.query("SELECT 1 FROM bot_users WHERE bot_id = $1 AND user_id = 4242", [BOT])).rows.length > 0)

    // the bot's Redis stream, as any redis-cli user would read it: sealed, not clear
    const r = new Redis(redis.url)
    try {
      const partition = running.node.stores.log.partitionOf(BOT)
      const entries = await r.xrange(redisKeys(redis.prefix, partition).stream(BOT), "-", "+")
      const text = JSON.stringify(entries)
      expect(text).toContain("sealed:v1:4242:")
      expect(text).not.toMatch(/Zelda|secret diary/)
    } finally {
      r.disconnect()
    }

    const forgot = await cli("users", "forget", BOT, "4242", "--json")
    expect(forgot.code).toBe(0)
    expect(JSON.parse(forgot.out)).toMatchObject({ botId: BOT, userId: 4242, alreadyForgotten: false, clearTextEvents: 0 })
    const tail = await cli("tail", BOT, "--no-follow", "--json")
    expect(tail.out).toContain("[erased]")
    expect(tail.out).not.toMatch(/Zelda|secret diary/)
    const { rows } = await running.node.stores.sql.query("SELECT 1 FROM bot_users WHERE bot_id = $1 AND user_id = 4242", [BOT])
    expect(rows).toHaveLength(0)

    // the node ran the bot again (control channel); it answers the next user as before
    await waitFor("the bot to run again", async () => (await Effect.runPromise(running.node.supervisor.status(BOT)))?.state === "running")
    await say(running.node, USERNAME, { userId: 77, firstName: "Bob", text: "/start" })
    await waitFor("a reply to Bob", async () => (await replies(running.node, USERNAME, 77)).length > 0)
  }, 120_000)
})
