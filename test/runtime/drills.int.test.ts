import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Exit, Redacted, Scope } from "effect"
import { Redis } from "ioredis"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { loadConfig } from "../../src/config.js"
import { makePgSql } from "../../src/db/pgSql.js"
import type { SqlClient } from "../../src/db/sql.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import { makeFleetDirectory } from "../../src/runtime/fleetDirectory.js"
import { registerBot } from "../../src/runtime/registerBot.js"
import { openStores } from "../../src/runtime/stores.js"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { makeTokenVault } from "../../src/telegram/tokenVault.js"
import { captureDependencyLogs } from "../support/captureLogs.js"
import { freePort, startPrivatePostgres, startPrivateRedis } from "../support/privateServers.js"
import type { PrivatePostgres, PrivateRedis } from "../support/privateServers.js"
import { startWebhookLoad, summarize } from "../support/webhookLoad.js"
import type { DrillBot, SentUpdate } from "../support/webhookLoad.js"

/*
 * Fault drills (issue 15): a `botfleet run` process in production mode (worker threads) under a
 * steady load of webhook updates, on a PRIVATE Postgres and a PRIVATE Redis started here (the
 * shared servers are never touched), while Postgres is restarted and the node's backends are
 * terminated, then while Redis is killed and started again (AOF with appendfsync always, so what
 * Redis acknowledged survives the kill). The node must stay alive throughout; every update the
 * ingress acknowledged with 2xx is answered exactly once on the Bot API stand-in; the projections
 * catch up (the archive holds every event of every stream); the log tells the outage.
 */

const bin = fileURLToPath(new URL("../../bin/botfleet.js", import.meta.url))
const BOTS: ReadonlyArray<DrillBot> = Array.from({ length: 4 }, (_, i) => ({ botId: `drill-${i}`, username: `drill_${i}_bot` }))
const RATE = 20

let pgServer: PrivatePostgres
let redisServer: PrivateRedis
let telegram: Sandbox
let dataDir: string
let node: ChildProcess
let ingressUrl: string
let log: EventLogService
let sql: SqlClient
const secretKey = randomBytes(32)
const logLines: Array<Record<string, unknown>> = []
const rawStderr: string[] = []
let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null
// this process's own clients (the observers below) go down too: keep their lines out of the output
const ownLogs = captureDependencyLogs()

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** Waits for `cond`; fails at once if the node process has exited (the drills' first claim). */
const until = async (what: string, cond: () => boolean | Promise<boolean>, ms: number, explain: () => string = () => "") => {
  const end = Date.now() + ms
  while (!(await cond())) {
    if (exited !== null) throw new Error(`${what}: the node exited (${JSON.stringify(exited)}); its last lines:\n${rawStderr.slice(-15).join("\n")}`)
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms${explain()}\nthe node's last lines:\n${rawStderr.slice(-30).join("\n")}`)
    await sleep(200)
  }
}

const repliesIn = (u: SentUpdate) => telegram.world.messages(u.bot.username, u.chatId).length
const knowChat = (bot: DrillBot, chatId: number) => {
  // the stand-in Bot API answers only in chats it knows, as Telegram does
  telegram.world.bot(bot.username).chats.set(chatId, { id: chatId, type: "private", first_name: "Drill" })
}
const messagesSince = (from: number) => logLines.slice(from).map((l) => String(l["message"]))

/** Events in the archive vs in the hot log, per bot: equal once the projections caught up. */
const archiveMatchesStreams = async () => {
  const { rows } = await sql.query<{ bot_id: string; n: number; top: number }>(
    "SELECT bot_id, count(*)::int AS n, max(version) AS top FROM events_archive GROUP BY bot_id"
  )
  for (const b of BOTS) {
    const version = await Effect.runPromise(log.streamVersion(b.botId))
    const row = rows.find((r) => r.bot_id === b.botId)
    if (!row || row.n !== version || row.top !== version) return false
  }
  return true
}

/** Runs one drill: load for `loadMs`, the fault at `faultAt`, then everything must settle. */
const drill = async (name: string, loadMs: number, fault: () => Promise<void>) => {
  const logFrom = logLines.length
  const load = startWebhookLoad({ ingressUrl, secretKey, bots: BOTS, rate: RATE, firstChatId: name === "postgres" ? 10_000 : 20_000, beforeSend: knowChat })
  const started = Date.now()
  const nodeAlive = async () => {
    if (exited === null) return
    await load.stop({ abandon: true })
    throw new Error(`${name} drill: the node exited (${JSON.stringify(exited)}); its last lines:\n${rawStderr.slice(-15).join("\n")}`)
  }
  await sleep(3000)
  await fault()
  await nodeAlive()
  await sleep(Math.max(0, loadMs - (Date.now() - started)))
  await nodeAlive()
  await load.stop()
  const acked = load.sent.filter((u) => u.acked)
  await until(`${name} drill: every acknowledged update answered`, () => acked.every((u) => repliesIn(u) > 0), 60_000, () => {
    const unanswered = acked.filter((u) => repliesIn(u) === 0)
    return `; ${unanswered.length} unanswered: ${JSON.stringify(unanswered.slice(0, 10).map((u) => ({ bot: u.bot.botId, chat: u.chatId, update: u.updateId, attempts: u.attempts })))}`
  })
  await until(`${name} drill: projections caught up`, archiveMatchesStreams, 60_000)
  // late doubles would show up now
  await sleep(1000)
  const summary = { drill: name, ...summarize(load.sent, repliesIn), crashed: exited !== null, ms: Date.now() - started }
  console.log(JSON.stringify(summary))
  return { summary, logs: messagesSince(logFrom), sent: load.sent }
}

beforeAll(async () => {
  ;[pgServer, redisServer, telegram] = await Promise.all([startPrivatePostgres(), startPrivateRedis({ aof: true }), startSandbox({ limits: false })])
  dataDir = await mkdtemp(join(tmpdir(), "bf-drills-"))
  const port = await freePort()
  ingressUrl = `http://127.0.0.1:${port}`
  const env: Record<string, string> = {
    DATABASE_URL: pgServer.url,
    REDIS_URL: redisServer.url,
    REDIS_PREFIX: "drill",
    BOTFLEET_SECRET_KEY: secretKey.toString("base64"),
    DATA_DIR: dataDir,
    HTTP_PORT: String(port),
    PUBLIC_URL: ingressUrl,
    TELEGRAM_API_ROOT: telegram.apiRoot,
    WORKER_THREADS: "2",
    NODE_ID: "drill-node",
    LOG_LEVEL: "info"
  }
  // the fleet: webhook bots of the built-in kind answering every text, registered before the node starts
  const config = await Effect.runPromise(loadConfig(env))
  const scope = await Effect.runPromise(Scope.make())
  try {
    const stores = await Effect.runPromise(Scope.extend(openStores(config), scope))
    for (const b of BOTS) {
      const tg = telegram.world.createBot({ username: b.username })
      await Effect.runPromise(
        registerBot({
          log: stores.log,
          vault: makeTokenVault(config.secretKey),
          directory: makeFleetDirectory(stores.sql),
          nodeId: "drill-setup",
          bot: { botId: b.botId, ownerId: "drill-owner", name: b.username, kind: "builtin", mode: "webhook", token: Redacted.make(tg.token), config: { fallback: "noted" } }
        })
      )
    }
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
  log = await Effect.runPromise(makeRedisEventLog({ url: redisServer.url, prefix: "drill", partitions: config.partitions }))
  sql = makePgSql(pgServer.url, { max: 2, applicationName: "drill-observer" })

  node = spawn(process.execPath, [bin, "run", "--no-sandbox"], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })
  node.on("exit", (code, signal) => (exited = { code, signal }))
  let partial = ""
  node.stderr!.on("data", (chunk: Buffer) => {
    const text = partial + chunk.toString("utf8")
    const lines = text.split("\n")
    partial = lines.pop() ?? ""
    for (const line of lines) {
      rawStderr.push(line)
      try {
        logLines.push(JSON.parse(line) as Record<string, unknown>)
      } catch {
        logLines.push({ message: `(not JSON) ${line}` })
      }
    }
  })
  node.stdout!.resume()
  await until("the node is ready", () => logLines.some((l) => l["message"] === "botfleet node ready"), 90_000)
  // every bot running: its webhook set at the stand-in
  await until("the bots' webhooks are set", () => BOTS.every((b) => telegram.world.bot(b.username).webhook !== null), 60_000)
}, 180_000)

afterAll(async () => {
  if (node && exited === null) {
    node.kill("SIGTERM")
    await until("the node stops", () => exited !== null, 30_000).catch(() => node.kill("SIGKILL"))
  }
  await sql?.close()
  if (log) await Effect.runPromise(log.close)
  await telegram?.close()
  await Promise.all([pgServer?.remove(), redisServer?.remove()])
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
  ownLogs.stop()
}, 60_000)

describe("fault drills: botfleet run under load while its stores go away", () => {
  it("Postgres restarted and the node's backends terminated: nothing acknowledged is lost or doubled, projections catch up, the node lives", async () => {
    let inTransaction = 0
    const { summary, logs } = await drill("postgres", 25_000, async () => {
      // the node's backends terminated in the middle of a projector's transaction (a checked-out
      // client had no 'error' listener: that crashed the process). To catch them there, the
      // checkpoints are locked for a moment, so the projectors' transactions wait inside.
      const locker = new pg.Client({ connectionString: pgServer.url })
      locker.on("error", () => undefined)
      await locker.connect()
      try {
        for (let round = 0; round < 3; round++) {
          await locker.query("BEGIN")
          await locker.query("LOCK TABLE projection_checkpoints IN ACCESS EXCLUSIVE MODE")
          // until a projector's transaction waits on the lock (events keep coming: one will)
          let caught = 0
          for (const end = Date.now() + 10_000; caught === 0 && Date.now() < end; ) {
            await sleep(100)
            caught = await pgServer.terminateBackends("application_name LIKE 'botfleet%' AND xact_start IS NOT NULL")
          }
          inTransaction += caught
          await locker.query("COMMIT")
          await sleep(300)
        }
      } finally {
        await locker.end()
      }
      // and every other backend of the node, then a fast shutdown, 5 s down, and a start
      await pgServer.terminateBackends("application_name LIKE 'botfleet%'")
      await pgServer.stop()
      await sleep(5000)
      await pgServer.start()
    })
    console.log(JSON.stringify({ drill: "postgres", backendsTerminatedInATransaction: inTransaction }))
    expect(summary.crashed).toBe(false)
    expect(inTransaction).toBeGreaterThan(0)
    expect(summary.tried).toBeGreaterThan(0)
    // the ingress does not need Postgres: every update was taken
    expect(summary.acknowledged).toBe(summary.tried)
    expect(summary.lost).toBe(0)
    expect(summary.doubled).toBe(0)
    expect(logs).toContain("postgres unreachable")
    expect(logs).toContain("postgres back")
    expect(logs).toContain("projections resumed")
    expect(logs.filter((m) => m.startsWith("projections paused"))).not.toHaveLength(0)
    expect(rawStderr.filter((l) => /Unhandled|\[ioredis\]/.test(l))).toEqual([])
  }, 150_000)

  it("Redis killed and started again: nothing acknowledged is lost or doubled, only 503s while it is down, the node lives and recovers", async () => {
    let downFrom = 0
    let downTo = 0
    const { summary, logs, sent } = await drill("redis", 30_000, async () => {
      await redisServer.kill()
      downFrom = Date.now()
      await sleep(5000)
      // the outage ends when the server starts, not when start() saw it answer: on a busy machine
      // that is seconds later, and an update the ingress held through the outage is rightly
      // acknowledged (200) once Redis took it
      downTo = Date.now()
      await redisServer.start()
    })
    expect(summary.crashed).toBe(false)
    expect(summary.lost).toBe(0)
    expect(summary.doubled).toBe(0)
    // every delivery was answered, 200 or 503 (Telegram delivers a 503'd update again), none refused for good
    expect(Object.keys(summary.statuses).filter((s) => s !== "200" && s !== "503")).toEqual([])
    const duringOutage = sent.flatMap((u) => u.attempts).filter((a) => a.at > downFrom + 200 && a.at + a.ms < downTo)
    expect(duringOutage.length).toBeGreaterThan(0)
    expect(duringOutage.filter((a) => a.status !== 503)).toEqual([])
    const outageMs = duringOutage.map((a) => a.ms).sort((x, y) => x - y)
    console.log(JSON.stringify({ drill: "redis", answersDuringOutage: outageMs.length, p50Ms: outageMs[Math.floor(outageMs.length / 2)], p99Ms: outageMs[Math.floor(outageMs.length * 0.99)], slowestMs: outageMs.at(-1) }))
    // all updates sent were acknowledged in the end (after the outage)
    expect(summary.acknowledged).toBe(summary.tried)
    expect(logs).toContain("redis unreachable")
    expect(logs).toContain("redis back")
    expect(rawStderr.filter((l) => /Unhandled|\[ioredis\]/.test(l))).toEqual([])
    // the outage cost no bot its life nor its node: no give-up, every lease still this node's,
    // and the control channel subscribed again
    for (const b of BOTS) {
      const events = await Effect.runPromise(log.readStream(b.botId))
      expect(events.filter((e) => e.data._tag === "BotGaveUp"), b.botId).toEqual([])
      const lease = await Effect.runPromise(log.readLease(b.botId))
      expect(lease?.nodeId, b.botId).toBe("drill-node")
      expect(lease!.expiresAt).toBeGreaterThan(Date.now() - 1000)
    }
    const probe = new Redis(redisServer.url)
    try {
      expect(await probe.pubsub("NUMSUB", "drill:control")).toEqual(["drill:control", 1])
    } finally {
      probe.disconnect()
    }
    // everything the node printed is a structured log line
    expect(logLines.filter((l) => String(l["message"]).startsWith("(not JSON)"))).toEqual([])
    // and the node still answers after both drills
    expect(exited).toBeNull()
  }, 150_000)
})
