import { Effect, Fiber } from "effect"
import { describe, expect, it } from "vitest"
import { runConsumer } from "../../src/events/consumer.js"
import { InvalidEvent, LogUnavailable, StaleFence, WrongExpectedVersion, isRetryable } from "../../src/events/errors.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
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
