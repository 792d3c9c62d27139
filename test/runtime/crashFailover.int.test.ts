import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { captureCli } from "../cli/support.js"
import { createTestDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"
import { count, eventTypes, fleetEnv, startTestNode } from "./support.js"
import type { TestNode } from "./support.js"

/*
 * A node that dies without draining (SIGKILL: no BotStopped, no lease handed back): once its lease
 * expires another node takes its bot over, from the recorded state, and nothing is answered twice.
 */

const bin = fileURLToPath(new URL("../../bin/botfleet.js", import.meta.url))
const redis = createTestPrefix("crash-failover")
let db: { url: string; drop: () => Promise<void> }
let dataDir: string
let telegram: Sandbox
let survivor: TestNode | null = null

beforeAll(async () => {
  db = await createTestDatabase("crash_failover")
  dataDir = await mkdtemp(join(tmpdir(), "bf-crash-"))
  telegram = await startSandbox()
})
afterAll(async () => {
  await survivor?.stop()
  await telegram.close()
  await db.drop()
  await redis.cleanup()
  await rm(dataDir, { recursive: true, force: true })
})

describe("a node killed mid-run", () => {
  it("its bot is taken over by another node once the lease expires, and nothing is answered twice", async () => {
    const env = fleetEnv(
      { db, redis, secretKey: randomBytes(32).toString("base64"), dataDir },
      { TELEGRAM_API_ROOT: telegram.apiRoot, LEASE_TTL_MS: "3000", LEASE_RENEW_MS: "1000", LOG_LEVEL: "warning" }
    )
    const tgBot = telegram.world.createBot({ username: "crashy_shop_bot" })
    const added = await captureCli({ ...env, BOT_TOKEN: tgBot.token }, ["bots", "add", "crashy", "--owner", "o1", "--mode", "polling"])
    expect(added.code).toBe(0)
    const configured = await captureCli(env, ["bots", "configure", "crashy", "--set", 'keywords=[{"match":"ping","reply":"pong"}]'])
    expect(configured.code).toBe(0)

    const child = spawn(process.execPath, [bin, "run"], { env: { ...process.env, ...env, NODE_ID: "doomed", HTTP_PORT: "0" }, stdio: ["ignore", "pipe", "pipe"] })
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)))
    const texts = () => telegram.world.messages("crashy_shop_bot", 44).map((m) => m.text)
    try {
      telegram.world.say("crashy_shop_bot", { userId: 44, text: "ping" })
      await expect.poll(texts, { timeout: 45_000 }).toEqual(["pong"])
    } finally {
      child.kill("SIGKILL")
    }
    expect(await exited).toBe("SIGKILL")

    survivor = await startTestNode({ ...env, NODE_ID: "survivor" })
    telegram.world.say("crashy_shop_bot", { userId: 44, text: "ping after the crash" })
    await expect.poll(texts, { timeout: 30_000 }).toEqual(["pong", "pong"])
    await expect.poll(async () => count(await eventTypes(survivor!.node.stores.log, "crashy"), "UpdateReceived"), { timeout: 10_000 }).toBe(2)
    const events = await Effect.runPromise(survivor.node.stores.log.readStream("crashy"))
    expect(events.filter((e) => e.data._tag === "BotStarted").map((e) => (e.data as { nodeId: string }).nodeId)).toEqual(["doomed", "survivor"])
    // the killed node recorded no stop: it never got to
    expect(events.filter((e) => e.data._tag === "BotStopped")).toHaveLength(0)
    expect(count(events.map((e) => e.type), "UpdateDuplicateDropped")).toBe(0)
  }, 150_000)
})
