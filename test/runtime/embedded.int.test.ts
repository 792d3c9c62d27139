import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { count, eventTypes, replies, say, startTestNode } from "./support.js"
import type { TestNode } from "./support.js"

let dataDir: string
let running: TestNode | null = null

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "bf-runtime-"))
})
afterAll(async () => {
  await running?.stop()
  await rm(dataDir, { recursive: true, force: true })
})

describe("embedded runtime (npm start): PGlite under DATA_DIR, sandbox, demo fleet", () => {
  it("answers through the sandbox, and after a restart on the same DATA_DIR remembers the user and answers nothing twice", async () => {
    running = await startTestNode({ DATA_DIR: dataDir })
    const first = running.node
    expect(first.config.mode).toBe("embedded")
    expect(first.demoBots.map((b) => b.username)).toEqual(["sunny_demo_bot", "barnacle_demo_bot", "clerk_demo_bot", "sage_demo_bot"])
    // the AI demo bot answers with the offline model stub the node started: no key, no network
    expect(first.aiBaseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/)
    await say(first, "sage_demo_bot", { userId: 7, firstName: "Ada", text: "What is botfleet?" })
    await expect.poll(() => replies(first, "sage_demo_bot", 7), { timeout: 20_000 }).toEqual([expect.stringContaining('You said: "What is botfleet?"')])

    await say(first, "sunny_demo_bot", { userId: 7, firstName: "Ada", text: "/start" })
    await expect.poll(() => replies(first, "sunny_demo_bot", 7), { timeout: 20_000 }).toEqual(["Hi Ada! Lovely to meet you. I am Sunny. 😊"])
    await say(first, "barnacle_demo_bot", { userId: 7, firstName: "Ada", text: "Where is your ship?" })
    await expect.poll(() => replies(first, "barnacle_demo_bot", 7), { timeout: 20_000 }).toEqual(["Arr! Me ship is the fastest on the seven seas."])
    await running.stop()
    running = null

    running = await startTestNode({ DATA_DIR: dataDir })
    const second = running.node
    // the sandbox is new (it lives in memory): the bots are known to it again, with their stored tokens
    await say(second, "sunny_demo_bot", { userId: 7, firstName: "Ada", text: "/start" })
    await expect.poll(() => replies(second, "sunny_demo_bot", 7), { timeout: 20_000 }).toEqual(["Welcome back, Ada! 😊"])
    // the sandbox knows each bot by its fleet id too (the name the banner, the chat page and the CLI show)
    await say(second, "demo-clerk", { userId: 8, firstName: "Bo", text: "/hours" })
    await expect.poll(() => replies(second, "@clerk_demo_bot", 8), { timeout: 20_000 }).toEqual([
      "The office is open from 9:00 to 17:00, Monday to Friday.\n\n— The Clerk"
    ])
    // nothing from the first run was answered again
    expect(await replies(second, "barnacle_demo_bot", 7)).toEqual([])

    // a reply is out before its update's last step (outcome, UpdateReceived) is appended
    await expect.poll(async () => count(await eventTypes(second.stores.log, "demo-sunny"), "UpdateReceived"), { timeout: 10_000 }).toBe(2)
    const sunny = await eventTypes(second.stores.log, "demo-sunny")
    expect(count(sunny, "BotRegistered")).toBe(1) // seeded once, not on every start
    expect(count(sunny, "UpdateReceived")).toBe(2)
    expect(count(sunny, "BotApiCallIntended")).toBe(2)
    expect(count(sunny, "BotApiCallSucceeded")).toBe(2)
    expect(count(sunny, "BotStopped")).toBeGreaterThanOrEqual(1) // the first run drained
    // the projections run in the node too
    const bots = () => second.stores.sql.query<{ n: number }>("SELECT count(*)::int AS n FROM bots WHERE bot_id LIKE 'demo-%'").then((r) => r.rows[0]?.n)
    await expect.poll(bots, { timeout: 15_000 }).toBe(4)
    await running.stop()
    running = null
  }, 120_000) // two PGlite starts on disk: slow on a busy 2-core machine
})
