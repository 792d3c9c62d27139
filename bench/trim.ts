import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { createServer } from "node:net"
import os from "node:os"
import { Duration, Effect, Fiber } from "effect"
import { Redis } from "ioredis"
import { makePostgresEventArchive } from "../src/actors/postgresEventArchive.js"
import { makeMemorySnapshotStore } from "../src/actors/snapshotStore.js"
import { migrate } from "../src/db/migrator.js"
import { makePgSql } from "../src/db/pgSql.js"
import { withArchiveReadThrough } from "../src/events/archiveReadThrough.js"
import { redisKeys } from "../src/events/partition.js"
import { makeRedisEventLog } from "../src/events/redisEventLog.js"
import type { DomainEvent } from "../src/events/schema/catalogue.js"
import { runProjectors } from "../src/projections/runner.js"
import { makePostgresTrimLedger } from "../src/trim/trimLedger.js"
import { runTrimmer } from "../src/trim/trimmer.js"
import { report } from "./report.js"
import { createScratchDatabase } from "../test/support/databases.js"

/*
 * trim: what the hot log holds under a steady load, untrimmed then trimmed. A Redis of its own
 * (so used_memory is the log's alone), Postgres for the projectors and the archive. BOTS bots get
 * RATE updates/s in all (each recorded as the echo bot does: UpdateReceived, MessageReceived,
 * ReplySent), a snapshot every SNAPSHOT_EVERY events of a bot, the projectors running throughout.
 * Phase 1 (UNTRIMMED_S): no trimmer; phase 2 (TRIMMED_S): the trimmer of runTrimmer, every
 * INTERVAL_S, HOT_LOG_EVENTS per stream, HOT_LOG_MAX_AGE. Printed every SAMPLE_S: used_memory,
 * bot-stream entries, partition-log entries, events appended and archived. Ends with a check that
 * the archive holds every event and that streams read through to it whole.
 */

const adminUrl = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"
const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback)
const BOTS = num("BENCH_TRIM_BOTS", 200)
const RATE = num("BENCH_TRIM_RATE", 150)
const UNTRIMMED_S = num("BENCH_TRIM_UNTRIMMED_S", 60)
const TRIMMED_S = num("BENCH_TRIM_TRIMMED_S", 120)
const SAMPLE_S = num("BENCH_TRIM_SAMPLE_S", 15)
const SNAPSHOT_EVERY = num("BENCH_TRIM_SNAPSHOT_EVERY", 100)
const HOT_LOG_EVENTS = num("BENCH_TRIM_HOT_EVENTS", 50)
const MAX_AGE_S = num("BENCH_TRIM_MAX_AGE_S", 30)
const INTERVAL_S = num("BENCH_TRIM_INTERVAL_S", 5)
const PARTITIONS = 16
const exec = Effect.runPromise

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })

const startRedis = async (): Promise<{ url: string; server: ChildProcess }> => {
  const port = await freePort()
  const server = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" })
  const url = `redis://127.0.0.1:${port}`
  const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => null })
  probe.on("error", () => undefined)
  for (let i = 0; ; i++) {
    try {
      await probe.connect()
      break
    } catch {
      if (i > 100) throw new Error("bench: the private redis-server did not start")
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  probe.disconnect()
  return { url, server }
}

const facts = (bot: number, n: number, at: string): DomainEvent[] => {
  const user = 1000 + ((bot * 7 + n) % 50)
  const text = `hello there, bot, this is message ${n}`
  return [
    { _tag: "UpdateReceived", inboxId: `${n}-0`, updateId: n, update: { update_id: n, message: { message_id: n, text, chat: { id: user, type: "private" }, from: { id: user, first_name: "Ada" } } }, receivedAt: at },
    { _tag: "MessageReceived", chatId: user, chatType: "private", userId: user, messageId: n, text, at },
    { _tag: "ReplySent", chatId: user, messageId: -n, text, inReplyTo: n, at }
  ]
}

export const run = async (): Promise<void> => {
  const redisServer = await startRedis()
  const db = await createScratchDatabase(adminUrl, "bench_trim")
  const sql = makePgSql(db.url, { max: 8 })
  const redis = new Redis(redisServer.url)
  try {
    await migrate(sql)
    const log = await exec(makeRedisEventLog({ redis, prefix: "bf", partitions: PARTITIONS }))
    const snapshots = makeMemorySnapshotStore()
    const bots = Array.from({ length: BOTS }, (_, i) => `bench-bot-${i}`)
    const versions = new Map<string, number>()
    const fences = new Map<string, number>()
    for (const botId of bots) {
      const lease = (await exec(log.acquireLease(botId, "bench", 3_600_000)))!
      fences.set(botId, lease.fence)
      const r = await exec(log.append({
        botId, expectedVersion: 0, fence: lease.fence,
        events: [{ data: { _tag: "BotRegistered", ownerId: "bench", name: botId, kind: "echo", mode: "sandbox" }, occurredAt: new Date().toISOString(), correlationId: "reg", actor: "owner:bench" }]
      }))
      versions.set(botId, r.version)
    }
    const projectors = Effect.runFork(runProjectors({ log, sql, backoff: { base: "200 millis" } }))

    let appended = BOTS
    let updateNo = 0
    // a steady load: every 100 ms, RATE/10 updates to bots in turn, one appendMany
    const perTick = Math.max(1, Math.round(RATE / 10))
    const load = Effect.runFork(
      Effect.gen(function* () {
        for (;;) {
          const at = new Date().toISOString()
          const reqs = Array.from({ length: perTick }, () => {
            const i = updateNo++ % BOTS
            const botId = bots[i]!
            return { botId, expectedVersion: versions.get(botId)!, fence: fences.get(botId)!, events: facts(i, updateNo, at).map((data) => ({ data, occurredAt: at, correlationId: `inbox:${updateNo}-0`, actor: "user:1" })) }
          })
          const results = yield* log.appendMany(reqs)
          for (const [k, r] of results.entries()) {
            if (r._tag !== "Right") continue
            const botId = reqs[k]!.botId
            const before = versions.get(botId)!
            versions.set(botId, r.right.version)
            appended += r.right.version - before
            // a snapshot each time a bot passes a multiple of SNAPSHOT_EVERY, as an actor would
            if (Math.floor(r.right.version / SNAPSHOT_EVERY) > Math.floor(before / SNAPSHOT_EVERY)) {
              yield* snapshots.save(botId, { version: r.right.version, schemaVersion: 1, fence: 1, state: { bench: true } }, []).pipe(Effect.ignore)
            }
          }
          yield* Effect.sleep("100 millis")
        }
      })
    )

    const sample = async (phase: string, elapsed: number) => {
      const memory = Number(/used_memory:(\d+)/.exec(await redis.info("memory"))![1])
      const pipe = redis.pipeline()
      for (let p = 0; p < PARTITIONS; p++) pipe.xlen(redisKeys("bf", p).log)
      for (const botId of bots) pipe.xlen(redisKeys("bf", log.partitionOf(botId)).stream(botId))
      const lens = ((await pipe.exec()) ?? []).map(([, n]) => Number(n))
      const partitionEntries = lens.slice(0, PARTITIONS).reduce((a, b) => a + b, 0)
      const streamEntries = lens.slice(PARTITIONS).reduce((a, b) => a + b, 0)
      const archived = Number((await sql.query<{ n: string }>("SELECT count(*)::text AS n FROM events_archive")).rows[0]!.n)
      const s = { phase, elapsedS: elapsed, usedMemoryMB: Math.round(memory / 1e5) / 10, streamEntries, partitionEntries, appended, archived, load1: os.loadavg()[0] }
      console.log(JSON.stringify({ bench: "trim.sample", ...s }))
      return s
    }

    const t0 = Date.now()
    const elapsed = () => Math.round((Date.now() - t0) / 1000)
    const samples: Array<Awaited<ReturnType<typeof sample>>> = []
    const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000))
    samples.push(await sample("untrimmed", 0))
    while (elapsed() < UNTRIMMED_S) {
      await sleep(SAMPLE_S)
      samples.push(await sample("untrimmed", elapsed()))
    }
    const untrimmed = samples[samples.length - 1]!

    const trimmer = Effect.runFork(
      runTrimmer({
        log,
        ledger: makePostgresTrimLedger(sql),
        snapshotVersion: (botId) => snapshots.version(botId),
        nodeId: "bench",
        hotEvents: HOT_LOG_EVENTS,
        maxAgeMs: MAX_AGE_S * 1000,
        interval: Duration.seconds(INTERVAL_S)
      })
    )
    while (elapsed() < UNTRIMMED_S + TRIMMED_S) {
      await sleep(SAMPLE_S)
      samples.push(await sample("trimmed", elapsed()))
    }
    await exec(Fiber.interrupt(load))
    // the truth of what was appended: the streams' versions (an append interrupted with the load
    // may have landed without being counted)
    appended = 0
    for (const botId of bots) {
      const v = await exec(log.streamVersion(botId))
      versions.set(botId, v)
      appended += v
    }
    const end = samples[samples.length - 1]!
    const trimmedSamples = samples.filter((s) => s.phase === "trimmed")
    const warm = trimmedSamples[Math.floor(trimmedSamples.length / 3)] ?? end

    // every event archived, and the streams read whole through the archive
    const deadline = Date.now() + 120_000
    while (Number((await sql.query<{ n: string }>("SELECT count(*)::text AS n FROM events_archive")).rows[0]!.n) < appended) {
      if (Date.now() > deadline) throw new Error("bench: the projectors did not archive every event in time")
      await sleep(1)
    }
    await exec(Fiber.interrupt(trimmer))
    await exec(Fiber.interrupt(projectors))
    const whole = withArchiveReadThrough(log, makePostgresEventArchive(sql))
    let wholeOk = 0
    for (const botId of bots.slice(0, 20)) {
      const read = await exec(whole.readStream(botId))
      if (read.length === versions.get(botId) && read.every((e, i) => e.version === i + 1)) wholeOk++
    }

    const common = { bots: BOTS, updatesPerSecond: RATE, snapshotEvery: SNAPSHOT_EVERY, hotLogEvents: HOT_LOG_EVENTS, maxAgeS: MAX_AGE_S, load1: os.loadavg()[0] }
    report({ bench: "trim.redis.usedMemory", unit: "MB", value: end.usedMemoryMB, baseline: `untrimmed after ${untrimmed.elapsedS} s`, baselineValue: untrimmed.usedMemoryMB, atS: end.elapsedS, ...common })
    report({ bench: "trim.redis.entries", unit: "entries", value: end.streamEntries + end.partitionEntries, baseline: `untrimmed after ${untrimmed.elapsedS} s`, baselineValue: untrimmed.streamEntries + untrimmed.partitionEntries, appendedTotal: appended, ...common })
    report({ bench: "trim.redis.flatness", unit: "MB", value: end.usedMemoryMB, baseline: `trimmed, at ${warm.elapsedS} s`, baselineValue: warm.usedMemoryMB, ...common })
    report({ bench: "trim.archive.complete", unit: "events", value: Number((await sql.query<{ n: string }>("SELECT count(*)::text AS n FROM events_archive")).rows[0]!.n), baseline: "appended", baselineValue: appended, streamsReadWhole: `${wholeOk}/20` })
    await exec(log.close)
  } finally {
    redis.disconnect()
    await sql.close()
    await db.drop()
    redisServer.server.kill("SIGTERM")
  }
}
