import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import { createTestDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"

const bin = fileURLToPath(new URL("../../bin/botfleet.js", import.meta.url))
const redis = createTestPrefix("runcmd")
let db: { url: string; drop: () => Promise<void> }

beforeAll(async () => {
  db = await createTestDatabase("runcmd")
})
afterAll(async () => {
  await db.drop()
  await redis.cleanup()
})

describe("botfleet run (a real process)", () => {
  it("prints where to chat, answers, and on SIGINT drains, hands its leases back and exits 0", async () => {
    const child = spawn(process.execPath, [bin, "run"], {
      env: {
        ...process.env,
        DATABASE_URL: db.url,
        REDIS_URL: redis.url,
        REDIS_PREFIX: redis.prefix,
        BOTFLEET_SECRET_KEY: randomBytes(32).toString("base64"),
        HTTP_PORT: "0",
        LOG_LEVEL: "info"
      },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()))
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()))
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
    try {
      await expect.poll(() => stdout, { timeout: 45_000 }).toContain("Press Ctrl-C")
      const chat = /Chat with the bots in your browser: (http:\/\/\S+)\/sandbox/.exec(stdout)?.[1]
      expect(chat).toBeDefined()
      const res = await fetch(`${chat}/sandbox/barnacle_demo_bot/say`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ userId: 9, firstName: "Jo", text: "/treasure" })
      })
      expect(res.status).toBe(200)
      const texts = async () => ((await (await fetch(`${chat}/sandbox/barnacle_demo_bot/messages?chatId=9`)).json()) as { messages: Array<{ text: string }> }).messages.map((m) => m.text)
      await expect.poll(texts, { timeout: 20_000 }).toEqual(["Arr! Ye will find me treasure where the X marks the spot."])
    } finally {
      child.kill("SIGINT")
    }
    expect(await exited).toBe(0)
    expect(stderr).toContain("botfleet node drained")
    expect(stderr).not.toMatch(/\d{6,}:[A-Za-z0-9_-]{30,}/) // no token in the logs

    const log = await Effect.runPromise(makeRedisEventLog({ url: redis.url, prefix: redis.prefix }))
    try {
      for (const botId of ["demo-sunny", "demo-barnacle", "demo-clerk", "demo-sage"]) {
        const lease = await Effect.runPromise(log.readLease(botId))
        // handed back: gone or expired (not left to run out its 15 s TTL)
        expect(lease === null || lease.expiresAt <= Date.now()).toBe(true)
        const types = (await Effect.runPromise(log.readStream(botId))).map((e) => e.type)
        expect(types.at(-1)).toBe("BotStopped")
      }
    } finally {
      await Effect.runPromise(log.close)
    }
  }, 90_000)
})
