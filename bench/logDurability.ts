import { Effect, Either } from "effect"
import type { AppendRequest, EventLogService } from "../src/events/eventLog.js"
import { makeRedisEventLog } from "../src/events/redisEventLog.js"
import type { NewEvent } from "../src/events/schema/envelope.js"
import { newEvent, updateReceived } from "../test/support/events.js"
import { startPrivateRedisServer } from "../test/support/privateRedisServer.js"
import type { Appendfsync } from "../test/support/privateRedisServer.js"
import { rate, report } from "./report.js"

/*
 * The cost of strict mode (docs/redis.md): the Redis adapter's appends on a private redis-server
 * with AOF and `appendfsync always` (every acknowledged write is on disk) against the same on a
 * private redis-server with `appendfsync everysec` (the usual setting: up to a second of
 * acknowledged writes lost in a host crash). Two shapes:
 * - log.redis.append.fsync: many bots appending at once (appendMany, batches of 100 appends of 4
 *   events, 8 batches in flight): Redis fsyncs once per event-loop turn, for every write of it;
 * - log.redis.append.fsync.sequential: one bot appending one event at a time, each append waiting
 *   for the previous one's acknowledgement (an actor's pattern): every append waits for an fsync.
 * Both servers run on the same disk, one after the other, alternating over trials; best of each.
 */

const BOTS = 200
const ROUNDS = 5
const TRIALS = 3
const EVENTS_PER_APPEND = 4
const APPENDS_PER_BATCH = 100
const IN_FLIGHT = 8
const SEQUENTIAL = 400

const update = (n: number): NewEvent => newEvent(updateReceived(n), { correlationId: `corr-${n}` })

interface Target {
  readonly mode: Appendfsync
  readonly log: EventLogService
  readonly fences: ReadonlyArray<number>
  readonly versions: Array<number>
  solo: { fence: number; version: number }
  readonly close: () => Promise<void>
}

const open = async (mode: Appendfsync, bots: ReadonlyArray<string>): Promise<Target> => {
  const server = await startPrivateRedisServer(mode)
  const log = await Effect.runPromise(makeRedisEventLog({ url: server.url, prefix: "bench" }))
  const fences = await Promise.all(bots.map(async (b) => (await Effect.runPromise(log.acquireLease(b, "bench-node", 600_000)))!.fence))
  const solo = (await Effect.runPromise(log.acquireLease("solo", "bench-node", 600_000)))!.fence
  return {
    mode, log, fences, versions: bots.map(() => 0), solo: { fence: solo, version: 0 },
    close: async () => {
      await Effect.runPromise(log.close)
      await server.close()
    }
  }
}

const chunk = <A>(xs: ReadonlyArray<A>, n: number): A[][] => {
  const out: A[][] = []
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n))
  return out
}

const payloads = Array.from({ length: EVENTS_PER_APPEND }, (_, k) => update(k + 1))

const fleetRounds = async (t: Target, bots: ReadonlyArray<string>, rounds: number) => {
  for (let r = 0; r < rounds; r++) {
    const reqs: AppendRequest[] = bots.map((botId, i) => ({ botId, expectedVersion: t.versions[i]!, fence: t.fences[i]!, events: payloads }))
    const batches = chunk(reqs, APPENDS_PER_BATCH)
    let next = 0
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < batches.length) {
          const results = await Effect.runPromise(t.log.appendMany(batches[next++]!))
          for (const x of results) if (Either.isLeft(x)) throw new Error(`append failed: ${x.left.message}`)
        }
      })
    )
    bots.forEach((_, i) => (t.versions[i] = t.versions[i]! + EVENTS_PER_APPEND))
  }
}

const sequential = async (t: Target, n: number) => {
  for (let i = 0; i < n; i++) {
    await Effect.runPromise(t.log.append({ botId: "solo", expectedVersion: t.solo.version, fence: t.solo.fence, events: [payloads[0]!] }))
    t.solo.version++
  }
}

export const run = async (): Promise<void> => {
  const bots = Array.from({ length: BOTS }, (_, i) => `bench-bot-${i}`)
  const always = await open("always", bots)
  const everysec = await open("everysec", bots)
  try {
    // warm up both (connections, script cache, JIT, AOF files)
    for (const t of [always, everysec]) {
      await fleetRounds(t, bots, 1)
      await sequential(t, 50)
    }
    const best = { always: 0, everysec: 0, alwaysSeq: 0, everysecSeq: 0 }
    const total = BOTS * ROUNDS * EVENTS_PER_APPEND
    for (let trial = 0; trial < TRIALS; trial++) {
      best.everysec = Math.max(best.everysec, await rate(total, () => fleetRounds(everysec, bots, ROUNDS)))
      best.always = Math.max(best.always, await rate(total, () => fleetRounds(always, bots, ROUNDS)))
      best.everysecSeq = Math.max(best.everysecSeq, await rate(SEQUENTIAL, () => sequential(everysec, SEQUENTIAL)))
      best.alwaysSeq = Math.max(best.alwaysSeq, await rate(SEQUENTIAL, () => sequential(always, SEQUENTIAL)))
    }
    report({
      bench: "log.redis.append.fsync",
      unit: "events/s",
      value: best.always,
      baseline: "appendfsync.everysec",
      baselineValue: best.everysec,
      mode: "appendfsync always",
      bots: BOTS,
      eventsPerTrial: total,
      eventsPerAppend: EVENTS_PER_APPEND,
      appendsPerBatch: APPENDS_PER_BATCH,
      batchesInFlight: IN_FLIGHT,
      trials: TRIALS
    })
    report({
      bench: "log.redis.append.fsync.sequential",
      unit: "appends/s",
      value: best.alwaysSeq,
      baseline: "appendfsync.everysec",
      baselineValue: best.everysecSeq,
      mode: "appendfsync always",
      appendsPerTrial: SEQUENTIAL,
      eventsPerAppend: 1,
      trials: TRIALS
    })
  } finally {
    await always.close()
    await everysec.close()
  }
}
