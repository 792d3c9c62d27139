import { Effect, Fiber, Option } from "effect"
import { describe, expect, it } from "vitest"
import { runConsumer } from "../../src/events/consumer.js"
import { InvalidEvent, LogUnavailable, StaleFence, WrongExpectedVersion, isRetryable } from "../../src/events/errors.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { newEvent, updateReceived } from "../support/events.js"

describe("runConsumer", () => {
  it("keeps handling new entries until interrupted, each once", async () => {
    const log = makeMemoryEventLog({ partitions: 4 })
    const bot = "consumer-bot"
    const p = log.partitionOf(bot)
    const seen: number[] = []
    const lease = (await Effect.runPromise(log.acquireLease(bot, "n1", 10_000)))!
    const program = Effect.gen(function* () {
      const fiber = yield* Effect.fork(
        runConsumer({ log, partition: p, group: "g", consumer: "c", handle: (e) => Effect.sync(() => void seen.push(e.version)) })
      )
      for (let v = 0; v < 3; v++) {
        yield* log.append({ botId: bot, expectedVersion: v, fence: lease.fence, events: [newEvent(updateReceived(v + 1))] })
        yield* Effect.sleep("30 millis")
      }
      yield* Effect.sleep("100 millis")
      yield* Fiber.interrupt(fiber)
      return yield* log.pendingCount(p, "g")
    })
    const pending = await Effect.runPromise(program)
    expect(seen).toEqual([1, 2, 3])
    expect(pending).toBe(0)
  })
})

describe("runConsumer while the log is unreachable", () => {
  it("backs off and goes on through outages, handles what waited once the log is back, and ends only when interrupted", async () => {
    const base = makeMemoryEventLog({ partitions: 4 })
    const bot = "outage-bot"
    const p = base.partitionOf(bot)
    let down = true
    let refused = 0
    const outage = <A>(operation: string, eff: Effect.Effect<A, LogUnavailable>) =>
      Effect.suspend(() => (down ? (refused++, Effect.fail(new LogUnavailable({ operation, cause: new Error("ECONNREFUSED") }))) : eff))
    const log: EventLogService = {
      ...base,
      ensureGroup: (...a) => outage("ensureGroup", base.ensureGroup(...a)),
      readGroup: (a) => outage("readGroup", base.readGroup(a)),
      reclaim: (a) => outage("reclaim", base.reclaim(a))
    }
    const lease = (await Effect.runPromise(base.acquireLease(bot, "n1", 10_000)))!
    const seen: number[] = []
    /** Waits (at most 2 s) until `cond` holds or the consumer ended; returns whether it still runs. */
    const runsUntil = (fiber: Fiber.RuntimeFiber<never, unknown>, cond: () => boolean) =>
      Effect.gen(function* () {
        for (let i = 0; i < 400 && !cond() && Option.isNone(yield* Fiber.poll(fiber)); i++) yield* Effect.sleep("5 millis")
        return Option.isNone(yield* Fiber.poll(fiber))
      })
    const program = Effect.gen(function* () {
      const fiber = yield* Effect.fork(
        runConsumer({ log, partition: p, group: "g", consumer: "c", backoffBaseMs: 2, backoffMaxMs: 10, handle: (e) => Effect.sync(() => void seen.push(e.version)) })
      )
      yield* base.append({ botId: bot, expectedVersion: 0, fence: lease.fence, events: [newEvent(updateReceived(1))] })
      const survivedFirst = yield* runsUntil(fiber, () => refused >= 5)
      down = false
      yield* runsUntil(fiber, () => seen.length === 1)
      down = true
      const before = refused
      const survivedSecond = yield* runsUntil(fiber, () => refused >= before + 5)
      yield* base.append({ botId: bot, expectedVersion: 1, fence: lease.fence, events: [newEvent(updateReceived(2))] })
      down = false
      const stillRuns = yield* runsUntil(fiber, () => seen.length === 2)
      yield* Fiber.interrupt(fiber)
      return { survivedFirst, survivedSecond, stillRuns }
    })
    expect(await Effect.runPromise(program)).toEqual({ survivedFirst: true, survivedSecond: true, stillRuns: true })
    expect(seen).toEqual([1, 2])
  })
})

describe("log errors", () => {
  it("say what happened in words an operator can act on", () => {
    expect(new WrongExpectedVersion({ botId: "b1", expected: 3, actual: 5 }).message).toBe("bot b1: expected stream version 3, but it is at 5")
    expect(new StaleFence({ botId: "b1", fence: 2, current: 4 }).message).toContain("no longer owns the bot")
    expect(new InvalidEvent({ reason: "UnknownType", detail: "no event type named X", type: "X", botId: "b1" }).message).toBe(
      "invalid event X for bot b1: UnknownType: no event type named X"
    )
    expect(new LogUnavailable({ operation: "append", cause: new Error("ECONNREFUSED") }).message).toBe("event log unavailable during append: ECONNREFUSED")
  })

  it("mark conflicts and outages retryable, fencing and bad input not", () => {
    expect(isRetryable(new WrongExpectedVersion({ botId: "b", expected: 0, actual: 1 }))).toBe(true)
    expect(isRetryable(new LogUnavailable({ operation: "x", cause: "down" }))).toBe(true)
    expect(isRetryable(new StaleFence({ botId: "b", fence: 1, current: 2 }))).toBe(false)
    expect(isRetryable(new InvalidEvent({ reason: "BadRequest", detail: "x" }))).toBe(false)
  })
})
