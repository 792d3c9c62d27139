import { describe, expect, it } from "vitest"
import type { RecordedEvent } from "../../src/events/schema/envelope.js"
import type { DomainEvent } from "../../src/events/schema/catalogue.js"
import { learnBotKind } from "../../src/metrics/botKinds.js"
import { parseRedisInfo } from "../../src/metrics/nodeGauges.js"
import {
  configureMetrics,
  countGiveUp,
  countProjected,
  countRestart,
  countUpdateAccepted,
  MAX_METHODS,
  metricNames,
  renderMetrics,
  setActorGauges,
  setRedisMemory
} from "../../src/metrics/registry.js"
import { recordAppend, recordCall } from "../../src/metrics/threadStats.js"
import { parseExposition, sumOf } from "./support.js"

/** Starts the process's metrics over (a change of options rebuilds them). */
const fresh = (botLabels: boolean) => {
  configureMetrics({ botLabels: !botLabels })
  configureMetrics({ botLabels })
}

let version = 0
const event = (botId: string, correlationId: string, data: DomainEvent): RecordedEvent => ({
  eventId: `e${++version}`,
  botId,
  version,
  type: data._tag,
  schemaVersion: 1,
  occurredAt: "2025-01-01T00:00:00.000Z",
  correlationId,
  causationId: null,
  actor: "user:777001",
  data,
  position: `${version}-0`,
  partition: 3
})

/** A user (id 777001) talks to bot `shop`; the bot answers once, fails once, drops a duplicate. */
const conversation = (botId: string): ReadonlyArray<RecordedEvent> => [
  event(botId, "inbox:1-0", { _tag: "MessageReceived", chatId: 777001, chatType: "private", userId: 777001, messageId: 1, text: "hi", at: "2025-01-01T00:00:00.000Z" }),
  event(botId, "inbox:1-0", { _tag: "ReplySent", chatId: 777001, messageId: 2, text: "token 123456:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", at: "2025-01-01T00:00:00.300Z" }),
  event(botId, "inbox:1-0", { _tag: "UpdateReceived", inboxId: "1-0", updateId: 10, update: { message: { from: { id: 777001 } } }, receivedAt: "2025-01-01T00:00:00.100Z" }),
  event(botId, "inbox:2-0", { _tag: "UpdateFailed", inboxId: "2-0", updateId: 11, reason: "boom" }),
  event(botId, "inbox:3-0", { _tag: "UpdateDuplicateDropped", inboxId: "3-0", updateId: 10 })
]

describe("the metrics registry", () => {
  it("counts updates by bot kind from projected events, with the reply latency they record", async () => {
    fresh(false)
    countProjected(3, conversation("shop"), new Map([["shop", "builtin"]]))
    countProjected(3, conversation("stranger"), new Map())
    const text = await renderMetrics()
    expect(sumOf(text, "botfleet_updates_handled_total", { kind: "builtin" })).toBe(1)
    expect(sumOf(text, "botfleet_updates_failed_total", { kind: "builtin" })).toBe(1)
    expect(sumOf(text, "botfleet_updates_duplicate_total", { kind: "builtin" })).toBe(1)
    // a bot whose kind this node never learnt still counts, as unknown
    expect(sumOf(text, "botfleet_updates_handled_total", { kind: "unknown" })).toBe(1)
    expect(sumOf(text, "botfleet_update_reply_seconds_count", { kind: "builtin" })).toBe(1)
    expect(sumOf(text, "botfleet_update_reply_seconds_sum", { kind: "builtin" })).toBeCloseTo(0.2)
    expect(sumOf(text, "botfleet_update_reply_seconds_bucket", { kind: "builtin", le: "0.1" })).toBe(0)
    expect(sumOf(text, "botfleet_update_reply_seconds_bucket", { kind: "builtin", le: "0.25" })).toBe(1)
    expect(sumOf(text, "botfleet_projected_events_total", { partition: "3" })).toBe(10)
  })

  it("never puts a user id, a chat id or a token in a label; the bot id only with METRICS_BOT_LABELS", async () => {
    fresh(false)
    learnBotKind("shop-42", "builtin")
    countProjected(3, conversation("shop-42"), new Map())
    countUpdateAccepted("shop-42", "webhook")
    countRestart("shop-42", "crash")
    countGiveUp("shop-42")
    const off = await renderMetrics()
    expect(off).not.toContain("777001")
    expect(off).not.toMatch(/\d+:[A-Za-z0-9_-]{30,}/)
    expect(off).not.toContain("shop-42")
    expect(parseExposition(off).some((s) => "bot" in s.labels)).toBe(false)

    fresh(true)
    countProjected(3, conversation("shop-42"), new Map())
    countUpdateAccepted("shop-42", "polling")
    countRestart("shop-42", "outage")
    countGiveUp("shop-42")
    const on = await renderMetrics()
    expect(on).not.toContain("777001")
    expect(sumOf(on, "botfleet_updates_handled_total", { kind: "builtin", bot: "shop-42" })).toBe(1)
    expect(sumOf(on, "botfleet_updates_accepted_total", { kind: "builtin", source: "polling", bot: "shop-42" })).toBe(1)
    expect(sumOf(on, "botfleet_update_reply_seconds_count", { bot: "shop-42" })).toBe(1)
    expect(sumOf(on, "botfleet_actor_restarts_total", { cause: "outage", bot: "shop-42" })).toBe(1)
    expect(sumOf(on, "botfleet_bot_giveups_total", { bot: "shop-42" })).toBe(1)
    // series that are not per bot stay without it
    expect(parseExposition(on).filter((s) => s.name.startsWith("botfleet_event_append")).some((s) => "bot" in s.labels)).toBe(false)
    fresh(false)
  })

  it("takes measurements made on the main thread as they happen, and keeps the method label bounded", async () => {
    fresh(false)
    recordAppend(0.003, "ok")
    recordAppend(0.2, "conflict")
    for (let i = 0; i <= MAX_METHODS + 10; i++) recordCall(`custom${i}`, "ok")
    const text = await renderMetrics()
    expect(sumOf(text, "botfleet_event_append_seconds_count")).toBe(2)
    expect(sumOf(text, "botfleet_event_append_seconds_bucket", { le: "0.005" })).toBe(1)
    expect(sumOf(text, "botfleet_event_appends_total", { result: "conflict" })).toBe(1)
    const methods = new Set(parseExposition(text).filter((s) => s.name === "botfleet_bot_api_calls_total").map((s) => s.labels["method"]))
    expect(methods.size).toBeLessThanOrEqual(MAX_METHODS + 1)
    expect(sumOf(text, "botfleet_bot_api_calls_total", { method: "other" })).toBeGreaterThanOrEqual(10)
    expect(sumOf(text, "botfleet_bot_api_calls_total")).toBe(MAX_METHODS + 11)
  })

  it("reports every supervision state, and Redis memory only once a node has Redis to read", async () => {
    fresh(false)
    setActorGauges({ running: 3, passivated: 2 }, 7, 5)
    let text = await renderMetrics()
    expect(parseExposition(text).filter((s) => s.name === "botfleet_actors").map((s) => [s.labels["state"], s.value])).toEqual([
      ["waiting", 0], ["starting", 0], ["running", 3], ["restarting", 0], ["passivated", 2], ["failed", 0], ["stopped", 0]
    ])
    expect(sumOf(text, "botfleet_inbox_depth")).toBe(7)
    expect(sumOf(text, "botfleet_inbox_depth_max")).toBe(5)
    expect(text).not.toContain("botfleet_redis_used_memory_bytes")
    const info = parseRedisInfo("# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nmaxmemory:4194304\r\n")
    setRedisMemory(info.get("used_memory")!, info.get("maxmemory")!)
    text = await renderMetrics()
    expect(sumOf(text, "botfleet_redis_used_memory_bytes")).toBe(1048576)
    expect(sumOf(text, "botfleet_redis_maxmemory_bytes")).toBe(4194304)
    expect(metricNames()).toContain("botfleet_redis_maxmemory_bytes")
  })
})
