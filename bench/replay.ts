import { randomBytes } from "node:crypto"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { makeBotDecider } from "../src/actors/decider/decide.js"
import { echoHandler } from "../src/actors/decider/updateHandler.js"
import { replayEvents } from "../src/cli/replay/replay.js"
import { readWholeStream } from "../src/cli/streamReader.js"
import type { EventLogService } from "../src/events/eventLog.js"
import { makeRedisEventLog } from "../src/events/redisEventLog.js"
import type { DomainEvent } from "../src/events/schema/catalogue.js"
import type { NewEvent } from "../src/events/schema/envelope.js"
import { report } from "./report.js"
import { deleteKeysUnder } from "../test/support/redisCleanup.js"

/*
 * `npm run bench -- replay`: a 100,000-event stream (echo bot: update, message, reply) in Redis,
 * replayed through the current code; events/s of read + replay against reading the same stream
 * (the baseline, same run). Target ≥ 20,000 events/s.
 */

const UPDATES = 33_334 // × 3 events ≈ 100,000

const record = async (log: EventLogService, botId: string): Promise<number> => {
  const decider = makeBotDecider(() => echoHandler)
  let state = decider.initialState
  const pending: Array<NewEvent> = []
  const push = (events: ReadonlyArray<DomainEvent>, at: string, correlationId: string, actor: string) => {
    for (const data of events) {
      pending.push({ data, occurredAt: at, correlationId, actor })
      state = decider.evolve(state, data)
    }
  }
  const t0 = Date.parse("2025-01-01T00:00:00Z")
  push(await decider.decide({ _tag: "Register", ownerId: "o", name: "b", kind: "echo", mode: "sandbox", at: new Date(t0).toISOString() }, state), new Date(t0).toISOString(), "reg", "owner:o")
  for (let n = 0; n < UPDATES; n++) {
    // one update a minute of recorded time: the decider keeps a 25 h dedupe window and copies it per
    // update, so denser traffic costs more per event (see the report)
    const at = new Date(t0 + (n + 1) * 60_000).toISOString()
    const update = { update_id: n + 1, message: { message_id: n + 1, text: `message ${n} — привет`, chat: { id: 1000 + (n % 50), type: "private" }, from: { id: 1000 + (n % 50), first_name: "U" } } }
    push(await decider.decide({ _tag: "HandleUpdate", inboxId: `${n + 1}-0`, update, at }, state), at, `update:${n + 1}`, `user:${1000 + (n % 50)}`)
  }
  const lease = (await Effect.runPromise(log.acquireLease(botId, "bench", 600_000)))!
  let version = 0
  for (let i = 0; i < pending.length; i += 1000) {
    const r = await Effect.runPromise(log.append({ botId, expectedVersion: version, fence: lease.fence, events: pending.slice(i, i + 1000) }))
    version = r.version
  }
  await Effect.runPromise(log.releaseLease(lease))
  return version
}

export const run = async (): Promise<void> => {
  const url = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"
  const prefix = `bfbench-${randomBytes(3).toString("hex")}`
  const log = await Effect.runPromise(makeRedisEventLog({ url, prefix }))
  try {
    const total = await record(log, "replay-bench")
    const seconds = async (fn: () => Promise<unknown>) => {
      const t = process.hrtime.bigint()
      await fn()
      return Number(process.hrtime.bigint() - t) / 1e9
    }
    const read = await seconds(() => Effect.runPromise(readWholeStream(log, "replay-bench")))
    let replayOnly = 0
    const full = await seconds(async () => {
      const events = await Effect.runPromise(readWholeStream(log, "replay-bench"))
      replayOnly = await seconds(async () => {
        const r = await replayEvents("replay-bench", events, () => echoHandler)
        if (!r.identical || r.inputsReplayed !== UPDATES) throw new Error("replay bench: the stream did not replay identically")
      })
    })
    report({ bench: "replay.redis", unit: "events/s", value: Math.round(total / full), baseline: "redis.readStream", baselineValue: Math.round(total / read), events: total })
    report({ bench: "replay.decide", unit: "events/s", value: Math.round(total / replayOnly), events: total, note: "replay alone, stream already in memory" })
  } finally {
    await Effect.runPromise(log.close)
    const redis = new Redis(url)
    await deleteKeysUnder(redis, prefix)
    redis.disconnect()
  }
}
