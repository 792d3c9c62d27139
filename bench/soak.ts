import { spawn } from "node:child_process"
import { appendFileSync } from "node:fs"
import type { ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import { readFile, mkdtemp, rm } from "node:fs/promises"
import os, { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Exit, Redacted, Scope } from "effect"
import { Redis } from "ioredis"
import { loadConfig } from "../src/config.js"
import { makePgSql } from "../src/db/pgSql.js"
import { makeRedisEventLog } from "../src/events/redisEventLog.js"
import { makeFleetDirectory } from "../src/runtime/fleetDirectory.js"
import { registerBot } from "../src/runtime/registerBot.js"
import { openStores } from "../src/runtime/stores.js"
import { startSandbox } from "../src/telegram/sandbox/server.js"
import type { MessageEvent } from "../src/telegram/sandbox/world.js"
import { makeTokenVault } from "../src/telegram/tokenVault.js"
import { report } from "./report.js"
import { createScratchDatabase } from "../test/support/databases.js"
import { freePort, startPrivateRedis } from "../test/support/privateServers.js"
import { startWebhookLoad, summarize } from "../test/support/webhookLoad.js"
import type { DrillBot, SentUpdate } from "../test/support/webhookLoad.js"

/*
 * soak: is a node's footprint flat under a steady load that never lets up? A `botfleet run`
 * process in production mode (worker threads, its own Redis so used_memory is the node's alone,
 * a scratch database on the Postgres server), BOTS webhook bots of the built-in kind, RATE
 * updates/s spread over them, every update from a user the bot has never seen (new users keep
 * arriving: the worst case for state). The stand-in Bot API (the sandbox) and the load generator
 * run in this process, the node in its own.
 *
 * Every SAMPLE_S: Redis used_memory, the node's RSS, updates acknowledged and answered. At the end:
 * growth of both after minute 3 (warm-up: resident entries fill up to MAX_RESIDENT_ENTRIES, the
 * hot-log window fills to HOT_LOG_MAX_AGE), peak against peak (target: within 15 %), every
 * acknowledged update answered exactly once, and the archive holding every event of every stream.
 *
 * `npm run bench -- soak` runs 10 minutes (BENCH_SOAK_MINUTES); the growth benchmark runs a
 * 2-minute version (its flatness is measured from minute 1).
 */

const adminUrl = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"
const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback)
const bin = fileURLToPath(new URL("../bin/botfleet.js", import.meta.url))
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export interface SoakOptions {
  readonly minutes: number
  /** Samples before this minute are the warm-up. */
  readonly warmupMinutes: number
  readonly bots: number
  readonly rate: number
  readonly sampleSeconds: number
  /** The node's MAX_RESIDENT_ENTRIES (per bot). */
  readonly residentEntries: number
  readonly label: string
}

interface Sample {
  readonly minute: number
  readonly redisUsedMemoryMb: number
  readonly nodeRssMb: number
  readonly acknowledged: number
  readonly answered: number
}

const rssMb = async (pid: number): Promise<number> => {
  const status = await readFile(`/proc/${pid}/status`, "utf8")
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
  return Math.round(kb / 102.4) / 10
}

const usedMemoryMb = async (redis: Redis): Promise<number> => {
  const info = await redis.info("memory")
  return Math.round(Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0) / 104857.6) / 10
}

/**
 * Growth after the warm-up, as a ratio (1 = flat): the highest sample of the later half against
 * the highest of the earlier half. Trimming every minute makes Redis a sawtooth, so comparing two
 * single samples would measure where in the tooth each fell.
 */
const growth = (samples: ReadonlyArray<Sample>, from: number, pick: (s: Sample) => number): number => {
  const after = samples.filter((s) => s.minute >= from).map(pick)
  if (after.length < 2) return Number.NaN
  const half = Math.floor(after.length / 2)
  return Math.round((Math.max(...after.slice(half)) / Math.max(...after.slice(0, half))) * 1000) / 1000
}

export const soak = async (o: SoakOptions) => {
  const redisServer = await startPrivateRedis()
  const db = await createScratchDatabase(adminUrl, "bench_soak")
  const telegram = await startSandbox({ limits: false })
  const dataDir = await mkdtemp(join(tmpdir(), "bf-soak-"))
  const secretKey = randomBytes(32)
  const port = await freePort()
  const ingressUrl = `http://127.0.0.1:${port}`
  const env: Record<string, string> = {
    DATABASE_URL: db.url,
    REDIS_URL: redisServer.url,
    REDIS_PREFIX: "soak",
    BOTFLEET_SECRET_KEY: secretKey.toString("base64"),
    DATA_DIR: dataDir,
    HTTP_PORT: String(port),
    PUBLIC_URL: ingressUrl,
    TELEGRAM_API_ROOT: telegram.apiRoot,
    WORKER_THREADS: process.env["BENCH_SOAK_THREADS"] ?? "2",
    MAX_RESIDENT_ENTRIES: String(o.residentEntries),
    NODE_ID: "soak-node",
    LOG_LEVEL: process.env["BENCH_SOAK_LOG_LEVEL"] ?? "warning"
  }
  const bots: ReadonlyArray<DrillBot> = Array.from({ length: o.bots }, (_, i) => ({ botId: `soak-${i}`, username: `soak_${i}_bot` }))
  const config = await Effect.runPromise(loadConfig(env))
  const scope = await Effect.runPromise(Scope.make())
  try {
    const stores = await Effect.runPromise(Scope.extend(openStores(config), scope))
    for (const b of bots) {
      const tg = telegram.world.createBot({ username: b.username })
      await Effect.runPromise(registerBot({
        log: stores.log,
        vault: makeTokenVault(config.secretKey),
        directory: makeFleetDirectory(stores.sql),
        nodeId: "soak-setup",
        bot: { botId: b.botId, ownerId: "soak-owner", name: b.username, kind: "builtin", mode: "webhook", token: Redacted.make(tg.token), config: { fallback: "noted" } }
      }))
    }
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }

  let node: ChildProcess | null = null
  let exited = false
  const redis = new Redis(redisServer.url)
  const log = await Effect.runPromise(makeRedisEventLog({ url: redisServer.url, prefix: "soak", partitions: config.partitions }))
  const sql = makePgSql(db.url, { max: 2, applicationName: "soak-observer" })
  try {
    const stderr: string[] = []
    node = spawn(process.execPath, [bin, "run", "--no-sandbox"], { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] })
    node.on("exit", () => (exited = true))
    const nodeLog = process.env["BENCH_SOAK_NODE_LOG"]
    node.stderr!.on("data", (c: Buffer) => {
      if (nodeLog) appendFileSync(nodeLog, c)
      stderr.push(...c.toString("utf8").split("\n").filter(Boolean))
      stderr.splice(0, Math.max(0, stderr.length - 200))
    })
    const until = async (what: string, cond: () => boolean | Promise<boolean>, ms: number) => {
      for (const end = Date.now() + ms; !(await cond()); await sleep(250)) {
        if (exited) throw new Error(`soak: the node exited while waiting for ${what}:\n${stderr.slice(-15).join("\n")}`)
        if (Date.now() > end) throw new Error(`soak: ${what} not within ${ms} ms`)
      }
    }
    await until("every bot's webhook", () => bots.every((b) => telegram.world.bot(b.username).webhook !== null), 180_000)

    // replies counted as they arrive: scanning the stand-in's messages per update would starve it
    const replies = new Map<string, number>()
    telegram.world.on("message", (m: MessageEvent) => {
      if (m.edited) return
      const k = `${m.bot}:${m.message.chat.id}`
      replies.set(k, (replies.get(k) ?? 0) + 1)
    })
    const repliesIn = (u: SentUpdate) => replies.get(`${u.bot.username}:${u.chatId}`) ?? 0
    const knowChat = (bot: DrillBot, chatId: number) =>
      void telegram.world.bot(bot.username).chats.set(chatId, { id: chatId, type: "private", first_name: "Soak" })
    const load = startWebhookLoad({ ingressUrl, secretKey, bots, rate: o.rate, firstChatId: 1_000, beforeSend: knowChat })
    const samples: Sample[] = []
    const started = Date.now()
    for (let t = o.sampleSeconds; t <= o.minutes * 60; t += o.sampleSeconds) {
      await sleep(Math.max(0, started + t * 1000 - Date.now()))
      if (exited) throw new Error(`soak: the node exited:\n${stderr.slice(-15).join("\n")}`)
      const acked = load.sent.filter((u) => u.acked)
      const s: Sample = {
        minute: Math.round((t / 60) * 100) / 100,
        redisUsedMemoryMb: await usedMemoryMb(redis),
        nodeRssMb: await rssMb(node.pid!),
        acknowledged: acked.length,
        answered: acked.filter((u) => repliesIn(u) > 0).length
      }
      samples.push(s)
      report({ bench: `soak${o.label}: sample`, unit: "MB", value: s.redisUsedMemoryMb, ...s })
    }
    await load.stop()
    const acked = load.sent.filter((u) => u.acked)
    await until("every acknowledged update answered", () => acked.every((u) => repliesIn(u) > 0), 300_000).catch(async (e: unknown) => {
      // what an operator would look at: which bots wait, their inbox and stream, the node's last words
      const waiting = new Map<string, number>()
      for (const u of acked) if (repliesIn(u) === 0) waiting.set(u.bot.botId, (waiting.get(u.bot.botId) ?? 0) + 1)
      const detail = []
      for (const [botId, n] of waiting) {
        const inbox = (await redis.keys(`soak:*:inbox:${botId}`))[0]
        detail.push({ botId, unanswered: n, inbox: inbox ? await redis.xlen(inbox) : null, version: await Effect.runPromise(log.streamVersion(botId)) })
      }
      console.error(JSON.stringify({ unanswered: detail }))
      // what the archive recorded for the first few of them
      for (const u of acked.filter((x) => repliesIn(x) === 0).slice(0, 3)) {
        const { rows } = await sql.query<{ version: number; type: string; data: string }>(
          "SELECT version, type, left(data::text, 300) AS data FROM events_archive WHERE bot_id = $1 AND data::text LIKE $2 ORDER BY version",
          [u.bot.botId, `%${u.chatId}%`]
        )
        console.error(JSON.stringify({ update: u.updateId, botId: u.bot.botId, chatId: u.chatId, attempts: u.attempts, events: rows }))
      }
      console.error(stderr.slice(-30).join("\n"))
      throw e
    })
    const archiveWhole = async () => {
      const { rows } = await sql.query<{ bot_id: string; n: number; top: number }>("SELECT bot_id, count(*)::int AS n, max(version) AS top FROM events_archive GROUP BY bot_id")
      const byBot = new Map(rows.map((r) => [r.bot_id, r]))
      for (const b of bots) {
        const version = await Effect.runPromise(log.streamVersion(b.botId))
        const row = byBot.get(b.botId)
        if (!row || row.n !== version || row.top !== version) return false
      }
      return true
    }
    await until("the archive holding every event", archiveWhole, 300_000)
    await sleep(1000)
    const summary = summarize(load.sent, repliesIn)
    const { rows } = await sql.query<{ n: string }>("SELECT count(*) AS n FROM events_archive")
    const minutes = (Date.now() - started) / 60_000
    const figure = {
      bench: `soak${o.label}: footprint after warm-up`,
      unit: "ratio (peak of the later half after warm-up / peak of the earlier half)",
      value: growth(samples, o.warmupMinutes, (s) => s.redisUsedMemoryMb),
      redisUsedMemoryGrowth: growth(samples, o.warmupMinutes, (s) => s.redisUsedMemoryMb),
      nodeRssGrowth: growth(samples, o.warmupMinutes, (s) => s.nodeRssMb),
      target: "≤ 1.15 each",
      warmupMinutes: o.warmupMinutes,
      bots: o.bots,
      offeredPerSecond: o.rate,
      answeredPerSecond: Math.round(acked.length / (minutes * 60)),
      maxResidentEntries: o.residentEntries,
      acknowledged: summary.acknowledged,
      lost: summary.lost,
      doubled: summary.doubled,
      archivedEvents: Number(rows[0]!.n),
      archiveHoldsEveryEvent: true,
      load: os.loadavg()[0]
    }
    report(figure)
    return figure
  } finally {
    if (node && !exited) {
      const gone = new Promise((r) => node!.once("exit", r))
      node.kill("SIGTERM")
      await Promise.race([gone, sleep(30_000).then(() => node!.kill("SIGKILL"))])
    }
    redis.disconnect()
    await Effect.runPromise(log.close)
    await sql.close()
    await telegram.close()
    await redisServer.remove()
    await db.drop()
    await rm(dataDir, { recursive: true, force: true })
  }
}

export const run = async () => {
  const minutes = num("BENCH_SOAK_MINUTES", 10)
  await soak({
    minutes,
    warmupMinutes: num("BENCH_SOAK_WARMUP_MINUTES", Math.min(3, minutes / 2)),
    bots: num("BENCH_SOAK_BOTS", 200),
    rate: num("BENCH_SOAK_RATE", 500),
    sampleSeconds: num("BENCH_SOAK_SAMPLE_S", 60),
    residentEntries: num("BENCH_SOAK_RESIDENT", 500),
    label: ""
  })
}
