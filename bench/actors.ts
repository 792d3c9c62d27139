import { randomBytes } from "node:crypto"
import os from "node:os"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { Effect, Exit, Scope } from "effect"
import { Redis } from "ioredis"
import { BotActor } from "../src/actors/actor.js"
import type { ActorDeps } from "../src/actors/actor.js"
import { SNAPSHOT_SCHEMA_VERSION, encodeCore } from "../src/actors/decider/snapshot.js"
import { fold } from "../src/actors/decider/state.js"
import { echoHandler } from "../src/actors/decider/updateHandler.js"
import { makePoolHost } from "../src/actors/poolHost.js"
import { makeRedisInbox } from "../src/actors/redisInbox.js"
import { makePostgresSnapshotStore } from "../src/actors/postgresSnapshotStore.js"
import { migrate } from "../src/db/migrator.js"
import { makePgSql } from "../src/db/pgSql.js"
import { createScratchDatabase } from "../test/support/databases.js"
import { makeSupervisor } from "../src/actors/supervisor.js"
import { redisKeys } from "../src/events/partition.js"
import { makeRedisEventLog } from "../src/events/redisEventLog.js"
import type { DomainEvent } from "../src/events/schema/catalogue.js"
import type { NewEvent } from "../src/events/schema/envelope.js"
import { percentile, report } from "./report.js"
import { deleteKeysUnder } from "../test/support/redisCleanup.js"

/*
 * actors.throughput: inputs/s from enqueue to recorded (inbox → actor on a worker thread → one
 * append of UpdateReceived + MessageReceived + ReplySent) for 1,000 bots on a 2-thread pool.
 * Baseline (same run): the same three events per input appended straight to the log from the
 * main thread, one append per input, bots in parallel, each bot's appends in order.
 * actors.activation: time to hydrate a bot from a snapshot plus a 100-event tail and record its
 * BotStarted (in-process, real Redis), one bot after the other, after 20 unmeasured warm-up
 * activations and a GC of the seeding's garbage; the 1-minute load average is printed with it,
 * because on a shared 2-core machine the p99 follows the load more than the code.
 * actors.idleMemory: heap per idle resident actor, 10,000 bots.
 */

const url = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"
const BOTS = Number(process.env["BENCH_BOTS"] ?? 1000)
const INPUTS_PER_BOT = Number(process.env["BENCH_INPUTS"] ?? 5)
const IDLE_BOTS = Number(process.env["BENCH_IDLE_BOTS"] ?? 10_000)
const PARTITIONS = 16
const exec = Effect.runPromise

const update = (id: number, botIndex: number) => ({
  update_id: id,
  message: {
    message_id: id,
    from: { id: 1000 + botIndex, is_bot: false, first_name: "Ada", language_code: "en" },
    chat: { id: 1000 + botIndex, type: "private" },
    date: 1_780_000_000,
    text: `hello there, bot (${id})`
  }
})
const stamp = (data: DomainEvent, correlationId: string): NewEvent => ({ data, occurredAt: new Date().toISOString(), correlationId, actor: "system" })

const waitFor = async (cond: () => Promise<boolean>, timeoutMs: number, what: string) => {
  const end = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`bench: timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

const cleanup = async (prefix: string) => {
  const redis = new Redis(url)
  await deleteKeysUnder(redis, prefix)
  redis.disconnect()
}

const throughput = async () => {
  const prefix = `bench-actors-${randomBytes(4).toString("hex")}`
  const o = { url, prefix, partitions: PARTITIONS }
  const log = await exec(makeRedisEventLog(o))
  const inbox = makeRedisInbox(o)
  const bots = Array.from({ length: BOTS }, (_, i) => `tb${i}`)
  const versions = () => exec(Effect.forEach(bots, (b) => log.streamVersion(b), { concurrency: 200 }))
  const total = BOTS * INPUTS_PER_BOT

  // baseline: the same events appended directly, without inbox or actors
  const direct = bots.map((b) => `direct-${b}`)
  const leases = await exec(Effect.forEach(direct, (b) => log.acquireLease(b, "bench", 600_000), { concurrency: 200 }))
  const t0 = process.hrtime.bigint()
  await Promise.all(
    direct.map(async (botId, i) => {
      for (let n = 1; n <= INPUTS_PER_BOT; n++) {
        const u = update(n, i)
        const at = new Date().toISOString()
        await exec(
          log.append({
            botId,
            expectedVersion: (n - 1) * 3,
            fence: leases[i]!.fence,
            events: [
              stamp({ _tag: "UpdateReceived", inboxId: `${n}-0`, updateId: n, update: u, receivedAt: at }, "direct"),
              stamp({ _tag: "MessageReceived", chatId: u.message.chat.id, chatType: "private", userId: u.message.from.id, messageId: n, text: u.message.text, at }, "direct"),
              stamp({ _tag: "ReplySent", chatId: u.message.chat.id, messageId: -n, text: u.message.text, inReplyTo: n, at }, "direct")
            ]
          })
        )
      }
    })
  )
  const baseline = total / (Number(process.hrtime.bigint() - t0) / 1e9)

  const host = makePoolHost({
    threads: 2,
    botsPerThread: Math.ceil(BOTS / 2),
    setup: { module: new URL("../src/actors/redisActorDeps.ts", import.meta.url).href, options: o }
  })
  const scope = Effect.runSync(Scope.make())
  const sup = await exec(Scope.extend(makeSupervisor({ nodeId: "bench", host, log, inbox }), scope))
  await exec(Effect.forEach(bots, (b) => sup.startBot(b), { discard: true }))
  await waitFor(async () => (await versions()).every((v) => v === 1), 120_000, "actors to start")
  const t1 = process.hrtime.bigint()
  await exec(
    Effect.forEach(
      bots.flatMap((b, i) => Array.from({ length: INPUTS_PER_BOT }, (_, n) => [b, update(n + 1, i)] as const)),
      ([b, u]) => inbox.enqueue(b, u),
      { concurrency: 200, discard: true }
    )
  )
  // poll cheaply (16 XLENs, not 1,000 reads) so the measurement does not load Redis itself
  const redis = new Redis(url)
  const logLength = async () => {
    let n = 0
    for (let p = 0; p < PARTITIONS; p++) n += await redis.xlen(redisKeys(prefix, p).log)
    return n
  }
  const expected = 3 * total + BOTS + 3 * total
  await waitFor(async () => (await logLength()) >= expected, 120_000, "inputs to be handled")
  redis.disconnect()
  const value = total / (Number(process.hrtime.bigint() - t1) / 1e9)
  report({
    bench: "actors.throughput",
    unit: "inputs/s",
    value: Math.round(value),
    baseline: "same events appended directly (1 append per input, no inbox, no actor)",
    baselineValue: Math.round(baseline),
    bots: BOTS,
    threads: 2,
    inputs: total
  })
  await exec(Scope.close(scope, Exit.void))
  await host.close()
  await exec(inbox.close)
  await exec(log.close)
  await cleanup(prefix)
}

const adminUrl = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"

/** A node's actor ports as production has them: log and inboxes on Redis, snapshots on Postgres (a scratch database). */
const redisDeps = async (prefix: string): Promise<ActorDeps & { readonly drop: () => Promise<void> }> => {
  const o = { url, prefix, partitions: PARTITIONS }
  const db = await createScratchDatabase(adminUrl, "bf_bench_actors")
  const sql = makePgSql(db.url, { max: 4 })
  await migrate(sql)
  return {
    log: await exec(makeRedisEventLog(o)),
    inbox: makeRedisInbox(o),
    snapshots: makePostgresSnapshotStore(sql),
    handlerFor: () => echoHandler,
    drop: async () => {
      await sql.close()
      await db.drop()
    }
  }
}
const closeDeps = async (d: ActorDeps & { readonly drop: () => Promise<void> }) => {
  await exec(d.inbox.close)
  await exec(d.snapshots.close)
  await exec(d.log.close)
  await d.drop()
}

const activation = async () => {
  const prefix = `bench-actors-${randomBytes(4).toString("hex")}`
  const deps = await redisDeps(prefix)
  const N = Number(process.env["BENCH_ACTIVATIONS"] ?? 200)
  // not measured: the first activations of a process run cold code (one took 14-17 ms, 4x a warm one)
  const WARMUP = 20
  const bots = Array.from({ length: WARMUP + N }, (_, i) => `ab${i}`)
  const events = (from: number, count: number): DomainEvent[] =>
    Array.from({ length: count }, (_, k) => ({ _tag: "SessionChanged", key: `chat:${(from + k) % 7}`, patch: { n: from + k, note: "a session value" } }))
  const fences = new Map<string, number>()
  await exec(
    Effect.forEach(
      bots,
      (botId) =>
        Effect.gen(function* () {
          const lease = (yield* deps.log.acquireLease(botId, "bench", 600_000))!
          fences.set(botId, lease.fence)
          const head = events(0, 300)
          yield* deps.log.append({ botId, expectedVersion: 0, fence: lease.fence, events: head.map((e) => stamp(e, "seed")) })
          const state = fold(head)
          yield* deps.snapshots.save(botId, { version: 300, schemaVersion: SNAPSHOT_SCHEMA_VERSION, fence: lease.fence, state: encodeCore(state) }, [...state.entries.values()])
          yield* deps.log.append({ botId, expectedVersion: 300, fence: lease.fence, events: events(300, 100).map((e) => stamp(e, "tail")) })
        }),
      { concurrency: 20, discard: true }
    )
  )
  // wall time, and the process's CPU time over the same span: under load the first also counts
  // time spent waiting for a core, the second is what the code itself costs
  const activate = async (botId: string): Promise<[wallMs: number, cpuMs: number]> => {
    const actor = new BotActor(deps, { botId, nodeId: "bench", fence: fences.get(botId)!, idleWaitMs: 60_000 })
    const c0 = process.cpuUsage()
    const t0 = process.hrtime.bigint()
    let started!: () => void
    const ready = new Promise<void>((r) => (started = r))
    const done = actor.run(() => started())
    await ready
    const wall = Number(process.hrtime.bigint() - t0) / 1e6
    const cpu = process.cpuUsage(c0)
    await actor.send({ _tag: "Stop", reason: "bench" })
    await done
    return [wall, (cpu.user + cpu.system) / 1000]
  }
  for (const botId of bots.slice(0, WARMUP)) await activate(botId)
  // seeding 88,000 events leaves ~90 MB of garbage: collected here, not in a measured activation
  gc()()
  const load = os.loadavg()[0]!
  const samples: Array<[number, number]> = []
  for (const botId of bots.slice(WARMUP)) samples.push(await activate(botId))
  const times = samples.map(([w]) => w).sort((a, b) => a - b)
  const cpu = samples.map(([, c]) => c).sort((a, b) => a - b)
  const round = (x: number) => Math.round(x * 100) / 100
  const conditions = { bots: N, warmup: WARMUP, load1: [round(load), round(os.loadavg()[0]!)] }
  report({ bench: "actors.activation.p50", unit: "ms", value: round(percentile(times, 50)), cpuMs: round(percentile(cpu, 50)), snapshotVersion: 300, tail: 100, ...conditions })
  report({ bench: "actors.activation.p99", unit: "ms", value: round(percentile(times, 99)), cpuMs: round(percentile(cpu, 99)), target: 10, max: round(times[times.length - 1]!), ...conditions })
  await closeDeps(deps)
  await cleanup(prefix)
}

const gc = (): (() => void) => {
  setFlagsFromString("--expose-gc")
  return runInNewContext("gc") as () => void
}

const idleMemory = async () => {
  const prefix = `bench-actors-${randomBytes(4).toString("hex")}`
  const deps = await redisDeps(prefix)
  const collect = gc()
  const bots = Array.from({ length: IDLE_BOTS }, (_, i) => `ib${i}`)
  const fences = await exec(Effect.forEach(bots, (b) => deps.log.acquireLease(b, "bench", 600_000), { concurrency: 500 }))
  collect()
  const before = process.memoryUsage().heapUsed
  const actors: Array<{ actor: BotActor; done: Promise<unknown> }> = []
  for (let i = 0; i < bots.length; i += 500) {
    await Promise.all(
      bots.slice(i, i + 500).map(async (botId, k) => {
        const actor = new BotActor(deps, { botId, nodeId: "bench", fence: fences[i + k]!.fence, idleWaitMs: 600_000 })
        let started!: () => void
        const ready = new Promise<void>((r) => (started = r))
        actors.push({ actor, done: actor.run(() => started()) })
        await ready
      })
    )
  }
  await new Promise((r) => setTimeout(r, 200))
  collect()
  const perBot = (process.memoryUsage().heapUsed - before) / IDLE_BOTS
  report({ bench: "actors.idleMemory", unit: "KB/bot", value: Math.round(perBot / 102.4) / 10, bots: IDLE_BOTS, target: 20, note: "resident, idle, waiting on its inbox; heap after GC" })
  await Promise.all(actors.map(async ({ actor, done }) => {
    await actor.send({ _tag: "Stop", reason: "bench" })
    await done
  }))
  await closeDeps(deps)
  await cleanup(prefix)
}

const runSelected = async (which: ReadonlyArray<string>) => {
  if (which.includes("throughput")) await throughput()
  if (which.includes("activation")) await activation()
  if (which.includes("memory")) await idleMemory()
}

/** `BENCH_ACTORS=throughput,activation,memory` picks parts (all by default). */
export const run = (): Promise<void> => runSelected((process.env["BENCH_ACTORS"] ?? "throughput,activation,memory").split(","))
