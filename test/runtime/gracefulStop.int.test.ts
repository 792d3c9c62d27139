import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makePgSql } from "../../src/db/pgSql.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { captureCli } from "../cli/support.js"
import { sumOf } from "../metrics/support.js"
import { createTestDatabase } from "../support/db.js"
import { promtool } from "../support/promtool.js"
import { legacyBotRegistered, newEvent, userSeen } from "../support/events.js"
import { createTestPrefix } from "../support/redis.js"
import { fleetEnv, replies, say, startTestNode } from "./support.js"

/*
 * A normal stop (Ctrl-C) lets the projections catch up with the log before the database closes:
 * the drain's last events (BotStopped...) are projected, so `botfleet status` shows every
 * partition caught up afterwards, in embedded mode and in production.
 */

const bin = fileURLToPath(new URL("../../bin/botfleet.js", import.meta.url))
const redis = createTestPrefix("stop")
let db: { url: string; drop: () => Promise<void> }
const dirs: string[] = []
const tempDir = async () => {
  const d = await mkdtemp(join(tmpdir(), "bf-stop-"))
  dirs.push(d)
  return d
}

beforeAll(async () => {
  db = await createTestDatabase("stop")
})
afterAll(async () => {
  await db.drop()
  await redis.cleanup()
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

interface Status {
  readonly bots: ReadonlyArray<{ botId: string; state: string }>
  readonly partitions: ReadonlyArray<{ partition: number; projectionLag: number; projectorStalled: boolean }>
}

/** `botfleet status --json` with `env`; also checks what the projections say of each bot. */
const status = async (env: Record<string, string>): Promise<Status> => {
  const res = await captureCli({ LOG_LEVEL: "warning", ...env }, ["status", "--json"])
  expect(res.err).toBe("")
  expect(res.code).toBe(0)
  return JSON.parse(res.out) as Status
}

/** A registered bot with `n` more events, appended in chunks under a lease of its own. */
const appendBacklog = (log: EventLogService, botId: string, n: number) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const lease = (yield* log.acquireLease(botId, "test", 60_000))!
      let version = (yield* log.append({ botId, expectedVersion: 0, fence: lease.fence, events: [legacyBotRegistered] })).version
      for (let done = 0; done < n; done += 2000) {
        const events = Array.from({ length: Math.min(2000, n - done) }, (_, i) => newEvent(userSeen(1_000_000 + done + i)))
        version = (yield* log.append({ botId, expectedVersion: version, fence: lease.fence, events })).version
      }
      yield* log.releaseLease(lease)
    })
  )

const expectCaughtUp = (s: Status) => {
  expect(s.partitions).toHaveLength(16)
  expect(s.partitions.filter((p) => p.projectionLag > 0 || p.projectorStalled)).toEqual([])
}

describe("a graceful stop leaves the projections caught up", () => {
  it("embedded: botfleet run, a conversation, Ctrl-C; status shows every partition caught up and the bots stopped", async () => {
    const dataDir = await tempDir()
    const child = spawn(process.execPath, [bin, "run"], { env: { ...process.env, DATA_DIR: dataDir, HTTP_PORT: "0", LOG_LEVEL: "info" }, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()))
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()))
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
    try {
      // a fresh DATA_DIR is created and migrated first: slow on a busy machine
      await expect.poll(() => stdout, { timeout: 180_000 }).toContain("Press Ctrl-C").catch((e: unknown) => {
        throw new Error(`no banner from botfleet run; its stderr:\n${stderr}`, { cause: e })
      })
      const sandbox = /Bot API sandbox: (http:\/\/\S+)/.exec(stdout)![1]!
      const ingress = /webhook ingress: (http:\/\/\S+)\/telegram/.exec(stdout)![1]!
      const res = await fetch(`${sandbox}/sandbox/sunny_demo_bot/say`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ userId: 31, firstName: "Io", text: "/start" })
      })
      expect(res.status).toBe(200)
      const texts = async () => ((await (await fetch(`${sandbox}/sandbox/sunny_demo_bot/messages?chatId=31`)).json()) as { messages: unknown[] }).messages
      await expect.poll(texts, { timeout: 30_000 }).toHaveLength(1)
      // an embedded node's scrape passes promtool too (actors on the main thread, PGlite)
      const scrape = await (await fetch(`${ingress}/metrics`)).text()
      expect(sumOf(scrape, "botfleet_updates_accepted_total", { source: "webhook" })).toBe(1)
      expect(sumOf(scrape, "botfleet_bot_api_calls_total", { method: "sendMessage", result: "ok" })).toBe(1)
      expect(scrape).not.toContain("botfleet_redis_used_memory_bytes")
      const checked = await promtool(["check", "metrics"], scrape)
      expect(checked.stdout + checked.stderr).toBe("")
    } finally {
      child.kill("SIGINT")
    }
    expect(await exited).toBe(0)
    expect(stderr).toContain("projections caught up")

    const s = await status({ DATA_DIR: dataDir })
    expectCaughtUp(s)
    expect(s.bots.map((b) => [b.botId, b.state])).toEqual([["demo-barnacle", "stopped"], ["demo-clerk", "stopped"], ["demo-sage", "stopped"], ["demo-sunny", "stopped"]])
  }, 300_000)

  it("production: a node stopped while its projections are behind projects the backlog and its bots' last events; status shows every partition caught up", async () => {
    const env = fleetEnv({ db, redis, secretKey: randomBytes(32).toString("base64"), dataDir: await tempDir() })
    const running = await startTestNode(env)
    try {
      await say(running.node, "clerk_demo_bot", { userId: 32, firstName: "Ul", text: "/start" })
      await expect.poll(() => replies(running.node, "clerk_demo_bot", 32), { timeout: 30_000 }).toHaveLength(1)
      // an import's worth of events lands just before the stop: more than the projectors write before they are stopped
      await appendBacklog(running.node.stores.log, "bulk-import", 20_000)
    } finally {
      await running.stop()
    }
    const s = await status(env)
    expectCaughtUp(s)
    expect(s.bots.map((b) => b.state)).toEqual(["stopped", "stopped", "stopped", "stopped"])
    const sql = makePgSql(db.url, { max: 1 })
    try {
      const { rows } = await sql.query<{ n: number }>("SELECT count(*)::int AS n FROM bot_users WHERE bot_id = 'bulk-import'")
      expect(rows[0]!.n).toBe(20_000)
    } finally {
      await sql.close()
    }
  }, 240_000)
})
