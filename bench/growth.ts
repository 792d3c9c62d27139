import { randomBytes } from "node:crypto"
import os from "node:os"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { BotActor } from "../src/actors/actor.js"
import type { ActorDeps, CallExecutor } from "../src/actors/actor.js"
import { SNAPSHOT_SCHEMA_VERSION, encodeCore } from "../src/actors/decider/snapshot.js"
import { fold } from "../src/actors/decider/state.js"
import { makePostgresSnapshotStore } from "../src/actors/postgresSnapshotStore.js"
import { makeRedisInbox } from "../src/actors/redisInbox.js"
import type { SnapshotStoreService } from "../src/actors/snapshotStore.js"
import { migrate } from "../src/db/migrator.js"
import { makePgSql } from "../src/db/pgSql.js"
import type { SqlClient } from "../src/db/sql.js"
import { makeRedisEventLog } from "../src/events/redisEventLog.js"
import type { DomainEvent } from "../src/events/schema/catalogue.js"
import { BotModuleRegistry } from "../src/telegram/bots/registry.js"
import { executeIntent } from "../src/telegram/recordedCalls.js"
import { Sender } from "../src/telegram/sender.js"
import { createScratchDatabase } from "../test/support/databases.js"
import { deleteKeysUnder } from "../test/support/redisCleanup.js"
import { percentile, report } from "./report.js"
import { soak } from "./soak.js"

/*
 * growth: what a bot's popularity costs (issue "bounded cost").
 *
 * growth.perUpdate.<n>: wall time per update of a built-in bot (real telegraf bot code, real Redis
 *   log and inbox, real Postgres snapshot store; Telegram answered at once by a stand-in behind the
 *   real recording path) whose snapshot store knows n users and n sessions, for the same updates:
 *   WORKLOAD updates from 1,000 users who are known in every size and were active recently (one
 *   unmeasured pass first, which loads them). Baseline: the same figure at the smallest size, so
 *   the ratio says what the bot's other users cost (target ≤ 1.5).
 * growth.snapshotBytesPerEvent.<n>: bytes the snapshots of that phase wrote, per event appended.
 * growth.coldUpdate.<n>: the same, but every update from a known user not in memory (loaded from
 *   Postgres first).
 * growth.activation.p50/p99: a bot of the largest size, from start to its first update (from a
 *   known user not in memory) handled, 30 times (target p99 ≤ 1 s).
 * growth.residentMemory: heap held by that bot after updates from 10,000 distinct users (recently
 *   active chats), after GC (target ≤ 50 MB).
 * The users are written into the snapshot store directly (SQL), not folded from a million events:
 * the figures measure what a bot of that size costs to run, not how it got there.
 */

const url = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"
const adminUrl = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"
const SIZES = (process.env["BENCH_GROWTH_SIZES"] ?? "1000,100000,1000000").split(",").map(Number)
const WORKLOAD = Number(process.env["BENCH_GROWTH_UPDATES"] ?? 3000)
const ACTIVE = 1000
const exec = Effect.runPromise
const round = (x: number) => Math.round(x * 1000) / 1000

const gc = (): (() => void) => {
  setFlagsFromString("--expose-gc")
  return runInNewContext("gc") as () => void
}

let nextUpdate = 1
const text = (userId: number, body: string) => {
  const id = nextUpdate++
  return {
    update_id: id,
    message: { message_id: id, date: 1_780_000_000, chat: { id: userId, type: "private" }, from: { id: userId, is_bot: false, first_name: `User ${userId}`, language_code: "en" }, text: body }
  }
}

/** Telegram answering at once, behind the real recording path. */
const instantTelegram = (): CallExecutor => {
  const sender = new Sender({ limits: false })
  let id = 0
  return (botId, _state, intent) =>
    executeIntent(intent, {
      botKey: botId,
      sender,
      now: () => new Date().toISOString(),
      call: (_method, params) => Effect.succeed({ message_id: ++id, date: 1, chat: { id: params["chat_id"], type: "private" }, text: params["text"] })
    })
}

/** The store, counting the bytes each snapshot writes (the bot-level part and the changed entries). */
const counting = (store: SnapshotStoreService) => {
  let bytes = 0
  const counted: SnapshotStoreService = {
    ...store,
    save: (botId, snap, entries) => {
      bytes += JSON.stringify(snap.state).length + entries.reduce((n, [k, v]) => n + k.length + JSON.stringify(v).length, 0)
      return store.save(botId, snap, entries)
    }
  }
  return { store: counted, bytes: () => bytes, reset: () => (bytes = 0) }
}

interface Bot {
  readonly deps: ActorDeps
  readonly fence: number
  readonly botId: string
  readonly snaps: ReturnType<typeof counting>
}

/** A registered built-in bot whose snapshot store knows `n` users, each with a session. */
const seed = async (sql: SqlClient, prefix: string, n: number): Promise<Bot> => {
  const botId = `grow${n}`
  const log = await exec(makeRedisEventLog({ url, prefix, partitions: 16 }))
  const snaps = counting(makePostgresSnapshotStore(sql))
  const deps: ActorDeps = {
    log,
    inbox: makeRedisInbox({ url, prefix, partitions: 16 }),
    snapshots: snaps.store,
    handlerFor: new BotModuleRegistry().handlerFor,
    executeCall: instantTelegram()
  }
  const lease = (await exec(log.acquireLease(botId, "bench", 3_600_000)))!
  const registered: DomainEvent = {
    _tag: "BotRegistered",
    ownerId: "bench",
    name: botId,
    kind: "builtin",
    mode: "sandbox",
    config: { greeting: "Hello {name}!", keywords: [{ match: "price", reply: "5" }], fallback: "Noted.", commands: {} }
  }
  await exec(log.append({ botId, expectedVersion: 0, fence: lease.fence, events: [{ data: registered, occurredAt: new Date().toISOString(), correlationId: "seed", actor: "owner:bench" }] }))
  await exec(snaps.store.save(botId, { version: 1, schemaVersion: SNAPSHOT_SCHEMA_VERSION, fence: lease.fence, state: encodeCore(fold([registered])) }, []))
  for (let from = 1; from <= n; from += 200_000) {
    const to = Math.min(n, from + 199_999)
    await sql.query(
      `INSERT INTO actor_entries (bot_id, key, fence, version, data)
       SELECT $1, 'u:' || g, $2::bigint, 1, jsonb_build_object('firstName', 'User ' || g, 'languageCode', 'en', 'firstSeen', '2026-01-01T00:00:00.000Z', 'lastSeen', '2026-01-01T00:00:00.000Z', 'blocked', false)
       FROM generate_series($3::int, $4::int) g
       UNION ALL
       SELECT $1, 's:' || g || ':' || g, $2::bigint, 1, jsonb_build_object('messages', 3) FROM generate_series($3::int, $4::int) g`,
      [botId, lease.fence, from, to]
    )
  }
  await sql.query("ANALYZE actor_entries")
  return { deps, fence: lease.fence, botId, snaps }
}

/** Enqueues the updates and waits until the actor handled them all; wall ms. */
const drive = async (bot: Bot, actor: BotActor, updates: ReadonlyArray<unknown>) => {
  const target = actor.status().updatesHandled + updates.length
  const t0 = performance.now()
  await exec(Effect.forEach(updates, (u) => bot.deps.inbox.enqueue(bot.botId, u), { concurrency: 50, discard: true }))
  while (actor.status().updatesHandled < target) await new Promise((r) => setTimeout(r, 1))
  return performance.now() - t0
}

const start = async (bot: Bot) => {
  const actor = new BotActor(bot.deps, { botId: bot.botId, nodeId: "bench", fence: bot.fence, snapshotEvery: 500, batchSize: 64, idleWaitMs: 100 })
  let started!: () => void
  const ready = new Promise<void>((r) => (started = r))
  const done = actor.run(() => started())
  await ready
  return { actor, stop: async () => void (await actor.send({ _tag: "Stop", reason: "bench" }), await done) }
}

const perUpdate = async (bot: Bot, n: number) => {
  const { actor, stop } = await start(bot)
  const users = Array.from({ length: ACTIVE }, (_, i) => 1 + i)
  // unmeasured: the active users' entries are loaded once, as they would be in a running bot
  await drive(bot, actor, users.map((u) => text(u, "hello")))
  const v0 = actor.status().version
  bot.snaps.reset()
  const cpu0 = process.cpuUsage()
  const wall = await drive(bot, actor, Array.from({ length: WORKLOAD }, (_, i) => text(users[i % ACTIVE]!, i % 3 === 0 ? "price?" : "hello")))
  const cpu = process.cpuUsage(cpu0)
  const events = actor.status().version - v0
  const bytes = bot.snaps.bytes()
  // cold: each update from a known user this actor has not seen (loaded from the store first)
  const coldUsers = Array.from({ length: 1000 }, (_, i) => Math.min(n, ACTIVE + 1 + Math.floor((i * (n - ACTIVE)) / 1000)))
  const cold = n > 2 * ACTIVE ? await drive(bot, actor, coldUsers.map((u) => text(u, "hello"))) : null
  await stop()
  return { msPerUpdate: wall / WORKLOAD, cpuMsPerUpdate: (cpu.user + cpu.system) / 1000 / WORKLOAD, bytesPerEvent: bytes / Math.max(1, events), coldMsPerUpdate: cold === null ? null : cold / 1000 }
}

const activation = async (bot: Bot, n: number) => {
  const samples: number[] = []
  for (let i = 0; i < 30; i++) {
    const user = 1 + Math.floor(((i * 7919) % n))
    await exec(bot.deps.inbox.enqueue(bot.botId, text(user, "hello")))
    const t0 = performance.now()
    const { actor, stop } = await start(bot)
    while (actor.status().updatesHandled === 0 || actor.status().inboxCursor === null) await new Promise((r) => setTimeout(r, 1))
    samples.push(performance.now() - t0)
    await stop()
  }
  return samples.sort((a, b) => a - b)
}

const residentMemory = async (bot: Bot, n: number) => {
  const collect = gc()
  collect()
  const before = process.memoryUsage().heapUsed
  const { actor, stop } = await start(bot)
  const chats = Array.from({ length: 10_000 }, (_, i) => 1 + Math.floor((i * (n - 1)) / 10_000))
  await drive(bot, actor, chats.map((u) => text(u, "hello")))
  collect()
  const held = process.memoryUsage().heapUsed - before
  const resident = actor.status().residentEntries
  await stop()
  return { mb: held / 1024 / 1024, resident }
}

export const run = async (): Promise<void> => {
  const prefix = `bench-growth-${randomBytes(4).toString("hex")}`
  const db = await createScratchDatabase(adminUrl, "bf_bench_growth")
  const sql = makePgSql(db.url, { max: 6 })
  try {
    await migrate(sql)
    const results = new Map<number, Awaited<ReturnType<typeof perUpdate>>>()
    const bots = new Map<number, Bot>()
    for (const n of SIZES) {
      const t0 = performance.now()
      const bot = await seed(sql, prefix, n)
      bots.set(n, bot)
      console.error(`growth: seeded ${n} users in ${Math.round(performance.now() - t0)} ms`)
      results.set(n, await perUpdate(bot, n))
    }
    const small = results.get(SIZES[0]!)!
    const load1 = round(os.loadavg()[0]!)
    for (const n of SIZES) {
      const r = results.get(n)!
      report({
        bench: `growth.perUpdate.${n}`,
        unit: "ms/update",
        value: round(r.msPerUpdate),
        cpuMs: round(r.cpuMsPerUpdate),
        baseline: `the same updates on a bot knowing ${SIZES[0]} users`,
        baselineValue: round(small.msPerUpdate),
        target: "ratio ≤ 1.5",
        updates: WORKLOAD,
        load1
      })
      report({ bench: `growth.snapshotBytesPerEvent.${n}`, unit: "bytes/event", value: Math.round(r.bytesPerEvent), baseline: `${SIZES[0]} users`, baselineValue: Math.round(small.bytesPerEvent) })
      if (r.coldMsPerUpdate !== null) report({ bench: `growth.coldUpdate.${n}`, unit: "ms/update", value: round(r.coldMsPerUpdate), baseline: "a recently active user's update", baselineValue: round(r.msPerUpdate), note: "each update from a known user not in memory" })
    }
    const largest = SIZES[SIZES.length - 1]!
    const big = bots.get(largest)!
    const times = await activation(big, largest)
    report({ bench: "growth.activation.p50", unit: "ms", value: round(percentile(times, 50)), users: largest, note: "start → first update (a user not in memory) handled" })
    report({ bench: "growth.activation.p99", unit: "ms", value: round(percentile(times, 99)), users: largest, target: 1000, max: round(times[times.length - 1]!) })
    const mem = await residentMemory(big, largest)
    report({ bench: "growth.residentMemory", unit: "MB", value: round(mem.mb), users: largest, recentChats: 10_000, residentEntries: mem.resident, target: 50 })
    for (const b of bots.values()) {
      await exec(b.deps.inbox.close)
      await exec(b.deps.log.close)
    }
  } finally {
    await sql.close()
    await db.drop()
    const redis = new Redis(url)
    await deleteKeysUnder(redis, prefix)
    redis.disconnect()
  }
  // Redis used_memory and the node's RSS per minute under a steady load: the short soak (bench/soak.ts runs the long one)
  await soak({
    minutes: Number(process.env["BENCH_GROWTH_SOAK_MINUTES"] ?? 2),
    warmupMinutes: 1,
    bots: Number(process.env["BENCH_GROWTH_SOAK_BOTS"] ?? 50),
    rate: Number(process.env["BENCH_GROWTH_SOAK_RATE"] ?? 100),
    sampleSeconds: 30,
    residentEntries: 500,
    label: ".short"
  })
}
