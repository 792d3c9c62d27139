import { randomBytes } from "node:crypto"
import { performance } from "node:perf_hooks"
import { Effect } from "effect"
import { Redis } from "ioredis"
import type { EventLogService } from "../src/events/eventLog.js"
import { makeMemoryEventLog } from "../src/events/memoryEventLog.js"
import { makeRedisEventLog } from "../src/events/redisEventLog.js"
import type { DomainEvent } from "../src/events/schema/catalogue.js"
import type { RecordedEvent } from "../src/events/schema/envelope.js"
import { instrumentLog } from "../src/metrics/instrumentStores.js"
import { mapBatch } from "../src/projections/mapping/mapBatch.js"
import { countProjected, renderMetrics, setProjectionGauges } from "../src/metrics/registry.js"
import { deleteKeysUnder } from "../test/support/redisCleanup.js"
import { newEvent, updateReceived } from "../test/support/events.js"
import { percentile, rate, report } from "./report.js"

/*
 * What /metrics costs a node.
 * - metrics.append: events/s of actor-style appends (one `append` per call, 4 events, 200 bots,
 *   16 in flight) through the Redis log measured by instrumentLog (latency + outcome), against the
 *   same appends on the bare log, alternating, best of TRIALS each. metrics.append.memory: the
 *   same on the in-memory log, where no I/O hides the wrapper's CPU cost.
 * - metrics.tally: projected events/s counted by countProjected (kinds, outcomes, reply latency),
 *   against mapping the same batches to projection rows (mapBatch: the projector's own CPU work,
 *   before its SQL).
 * - metrics.render: p50/p99 ms of rendering the registry (16 partitions, process metrics).
 */

const BOTS = 200
const APPENDS_PER_BOT = 60
const EVENTS_PER_APPEND = 4
const IN_FLIGHT = 16
const TRIALS = 5
const url = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"

const appendAll = async (log: EventLogService, bots: ReadonlyArray<{ botId: string; fence: number; version: number }>) => {
  const payloads = Array.from({ length: EVENTS_PER_APPEND }, (_, k) => newEvent(updateReceived(k + 1)))
  let next = 0
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < bots.length) {
        const bot = bots[next++]!
        for (let i = 0; i < APPENDS_PER_BOT; i++) {
          const r = await Effect.runPromise(log.append({ botId: bot.botId, expectedVersion: bot.version, fence: bot.fence, events: payloads }))
          bot.version = r.version
        }
      }
    })
  )
}

const appendBenchOn = async (raw: EventLogService, bench: string, baseline: string) => {
  const measured = instrumentLog(raw, "redis")
  const bots = await Promise.all(
    Array.from({ length: BOTS }, async (_, i) => {
      const botId = `bench-bot-${i}`
      const lease = await Effect.runPromise(raw.acquireLease(botId, "bench", 600_000))
      return { botId, fence: lease!.fence, version: 0 }
    })
  )
  await appendAll(raw, bots) // warm-up
  await appendAll(measured, bots)
  const total = BOTS * APPENDS_PER_BOT * EVENTS_PER_APPEND
  let bare = 0
  let value = 0
  for (let t = 0; t < TRIALS; t++) {
    bare = Math.max(bare, await rate(total, () => appendAll(raw, bots)))
    value = Math.max(value, await rate(total, () => appendAll(measured, bots)))
  }
  report({ bench, unit: "events/s", value, baseline, baselineValue: bare })
}

const appendBench = async () => {
  await appendBenchOn(makeMemoryEventLog({ partitions: 16 }), "metrics.append.memory", "the same appends on the bare in-memory log")
  const prefix = `bench-metrics-${randomBytes(4).toString("hex")}`
  const raw = await Effect.runPromise(makeRedisEventLog({ url, prefix }))
  const redis = new Redis(url)
  try {
    await appendBenchOn(raw, "metrics.append", "the same appends on the bare Redis log")
  } finally {
    await Effect.runPromise(raw.close)
    await deleteKeysUnder(redis, prefix)
    redis.disconnect()
  }
}

const tallyBench = async () => {
  // what one handled update with one reply records: the mix the projectors see
  const perUpdate = (u: number): ReadonlyArray<DomainEvent> => [
    { _tag: "BotApiCallIntended", callId: `${u}:0`, method: "sendMessage", params: { chat_id: 7, text: "hello" }, awaited: true },
    { _tag: "BotApiCallSucceeded", callId: `${u}:0`, result: { message_id: u, chat: { id: 7 }, text: "hello" } },
    { _tag: "ReplySent", chatId: 7, messageId: u, text: "hello", at: "2026-11-26T10:00:00.300Z" },
    { _tag: "UpdateReceived", inboxId: `${u}-0`, updateId: u, update: { update_id: u }, receivedAt: "2026-11-26T10:00:00.000Z" },
    { _tag: "MessageReceived", chatId: 7, chatType: "private", userId: 7, messageId: u, text: "hi", at: "2026-11-26T10:00:00.000Z" },
    { _tag: "UserSeen", userId: 7, firstName: "Ada", at: "2026-11-26T10:00:00.000Z" }
  ]
  const N = 198_000
  const events: RecordedEvent[] = Array.from({ length: N / 6 }, (_, u) => perUpdate(u)).flatMap((datas, u) =>
    datas.map((data, k) => {
      const i = u * 6 + k
      return {
        eventId: `e${i}`, botId: `bot-${u % 100}`, version: i + 1, type: data._tag, schemaVersion: 1, occurredAt: "2026-11-26T10:00:00.000Z",
        correlationId: `inbox:${u}-0`, causationId: null, actor: "system", data, position: `${i}-0`, partition: 0
      }
    })
  )
  const kinds = new Map(Array.from({ length: 100 }, (_, b) => [`bot-${b}`, "builtin"]))
  const owners = new Map(Array.from({ length: 100 }, (_, b) => [`bot-${b}`, "owner"]))
  const batches = Array.from({ length: Math.ceil(N / 1000) }, (_, b) => events.slice(b * 1000, (b + 1) * 1000))
  const inputs = batches.map((batch) => batch.map((event) => ({ event, raw: { schemaVersion: "1", data: JSON.stringify(event.data) } })))
  let bare = 0
  let value = 0
  for (let t = 0; t < TRIALS; t++) {
    bare = Math.max(bare, await rate(N, async () => {
      for (const batch of inputs) mapBatch(batch, owners)
    }))
    value = Math.max(value, await rate(N, async () => {
      for (const batch of batches) countProjected(0, batch, kinds)
    }))
  }
  report({ bench: "metrics.tally", unit: "events/s", value, baseline: "mapBatch of the same batches (the projector's mapping, before SQL)", baselineValue: bare })
}

const renderBench = async () => {
  for (let p = 0; p < 16; p++) setProjectionGauges(p, { waiting: 0, lagSeconds: 0, stalled: false })
  const times: number[] = []
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now()
    await renderMetrics()
    times.push(performance.now() - t0)
  }
  times.sort((a, b) => a - b)
  report({ bench: "metrics.render", unit: "ms", value: Math.round(percentile(times, 50) * 100) / 100, p99: Math.round(percentile(times, 99) * 100) / 100 })
}

export const run = async (): Promise<void> => {
  await appendBench()
  await tallyBench()
  await renderBench()
}
