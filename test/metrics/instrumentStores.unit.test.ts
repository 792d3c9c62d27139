import { Effect, Either } from "effect"
import { describe, expect, it } from "vitest"
import { makeMemoryInbox } from "../../src/actors/memoryInbox.js"
import type { SqlClient } from "../../src/db/sql.js"
import { LogUnavailable } from "../../src/events/errors.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import { instrumentInbox, instrumentLog, instrumentSql, isConnectionError } from "../../src/metrics/instrumentStores.js"
import { configureMetrics, renderMetrics } from "../../src/metrics/registry.js"
import { sumOf } from "./support.js"

const run = Effect.runPromise
const meta = { occurredAt: "2025-01-01T00:00:00.000Z", correlationId: "c", actor: "system" }
const started = { ...meta, data: { _tag: "BotStarted" as const, nodeId: "n", fence: 1 } }

/** Starts the process's metrics over (a change of options rebuilds them). */
const fresh = () => {
  configureMetrics({ botLabels: true })
  configureMetrics({ botLabels: false })
}

describe("stores as /metrics sees them", () => {
  it("times every append and counts it by outcome, without changing its result", async () => {
    fresh()
    const log = instrumentLog(makeMemoryEventLog({ partitions: 2 }), "redis")
    const lease = (await run(log.acquireLease("b", "n", 10_000)))!
    expect((await run(log.append({ botId: "b", expectedVersion: 0, fence: lease.fence, events: [started] }))).version).toBe(1)
    const conflict = await run(Effect.either(log.append({ botId: "b", expectedVersion: 0, fence: lease.fence, events: [started] })))
    expect(Either.isLeft(conflict) && conflict.left._tag).toBe("WrongExpectedVersion")
    const stale = await run(Effect.either(log.append({ botId: "b", expectedVersion: 1, fence: lease.fence - 1, events: [started] })))
    expect(Either.isLeft(stale) && stale.left._tag).toBe("StaleFence")
    // methods that are not Effects pass through untouched
    expect(log.partitionOf("b")).toBe(makeMemoryEventLog({ partitions: 2 }).partitionOf("b"))
    expect(log.partitions).toBe(2)
    const text = await renderMetrics()
    expect(sumOf(text, "botfleet_event_append_seconds_count")).toBe(3)
    expect(sumOf(text, "botfleet_event_appends_total", { result: "ok" })).toBe(1)
    expect(sumOf(text, "botfleet_event_appends_total", { result: "conflict" })).toBe(1)
    expect(sumOf(text, "botfleet_event_appends_total", { result: "stale_fence" })).toBe(1)
  })

  it("counts dead letters by where they went, and outages of the store by operation", async () => {
    fresh()
    const base = makeMemoryEventLog({ partitions: 1 })
    const down = new LogUnavailable({ operation: "readStream", cause: new Error("ECONNREFUSED") })
    const appendDown = new LogUnavailable({ operation: "append", cause: new Error("ECONNRESET") })
    let failAppend = false
    const log = instrumentLog({ ...base, readStream: () => Effect.fail(down), append: (req) => (failAppend ? Effect.fail(appendDown) : base.append(req)) }, "redis")
    const lease = (await run(log.acquireLease("b", "n", 10_000)))!
    await run(log.append({ botId: "b", expectedVersion: 0, fence: lease.fence, events: [started] }))
    await run(log.ensureGroup(0, "g", "start"))
    const [delivery] = await run(log.readGroup({ partition: 0, group: "g", consumer: "c", count: 1 }))
    await run(log.deadLetter({ group: "g", delivery: delivery!, reason: "refused" }))
    expect(await run(Effect.either(log.readStream("b")))).toEqual(Either.left(down))
    failAppend = true
    expect(await run(Effect.either(log.append({ botId: "b", expectedVersion: 1, fence: lease.fence, events: [started] })))).toEqual(Either.left(appendDown))

    const inbox = instrumentInbox(makeMemoryInbox(), "pglite")
    const id = await run(inbox.enqueue("b", { update_id: 1 }))
    const [entry] = await run(inbox.readAfter("b", null, 10))
    expect(entry!.id).toBe(id)
    await run(inbox.deadLetter("b", entry!, "handler threw"))
    expect(await run(inbox.readDeadLetters("b"))).toHaveLength(1)

    const text = await renderMetrics()
    expect(sumOf(text, "botfleet_dead_lettered_total", { source: "log" })).toBe(1)
    expect(sumOf(text, "botfleet_dead_lettered_total", { source: "inbox" })).toBe(1)
    expect(sumOf(text, "botfleet_store_errors_total", { store: "redis", operation: "readStream" })).toBe(1)
    expect(sumOf(text, "botfleet_store_errors_total", { store: "redis", operation: "append" })).toBe(1)
    expect(sumOf(text, "botfleet_store_errors_total")).toBe(2)
    expect(sumOf(text, "botfleet_event_appends_total", { result: "unavailable" })).toBe(1)
  })

  it("counts SQL calls that could not reach the database, not statements the database refused", async () => {
    fresh()
    const refused = Object.assign(new Error('duplicate key value violates unique constraint "x"'), { code: "23505" })
    const unreachable = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" })
    let next: Error | null = null
    const failing: SqlClient = {
      dialect: "postgres",
      query: async () => {
        if (next) throw next
        return { rows: [], rowCount: 0 }
      },
      transaction: async (fn) => fn({ dialect: "postgres", query: async () => { throw next! }, exec: async () => undefined }),
      batch: async () => {
        throw next!
      },
      exec: async () => {
        throw next!
      },
      close: async () => undefined
    }
    const sql = instrumentSql(failing, "postgres")
    await expect(sql.query("SELECT 1")).resolves.toEqual({ rows: [], rowCount: 0 })
    next = refused
    await expect(sql.query("INSERT")).rejects.toBe(refused)
    next = unreachable
    await expect(sql.query("SELECT 1")).rejects.toBe(unreachable)
    await expect(sql.transaction((tx) => tx.query("SELECT 1"))).rejects.toBe(unreachable)
    await expect(sql.exec("SELECT 1")).rejects.toBe(unreachable)
    await expect(sql.batch([{ text: "SELECT 1" }])).rejects.toBe(unreachable)
    const text = await renderMetrics()
    expect(sumOf(text, "botfleet_store_errors_total", { store: "postgres" })).toBe(4)
    expect(sumOf(text, "botfleet_store_errors_total", { operation: "batch" })).toBe(1)
    expect(sumOf(text, "botfleet_store_errors_total", { operation: "transaction" })).toBe(1)
  })

  it("tells connection failures from refused statements", () => {
    const withCode = (code: string, message = "x") => Object.assign(new Error(message), { code })
    expect(isConnectionError(withCode("08006"))).toBe(true)
    expect(isConnectionError(withCode("57P01", "terminating connection due to administrator command"))).toBe(true)
    expect(isConnectionError(withCode("53300", "too many clients"))).toBe(true)
    expect(isConnectionError(withCode("ECONNRESET"))).toBe(true)
    expect(isConnectionError(new Error("Connection terminated unexpectedly"))).toBe(true)
    expect(isConnectionError(withCode("23505"))).toBe(false)
    expect(isConnectionError(withCode("42P01", 'relation "x" does not exist'))).toBe(false)
    expect(isConnectionError(new Error("checkpoints of partition 3 disagree"))).toBe(false)
  })
})
