import { Effect, Fiber } from "effect"
import { beforeAll, beforeEach, describe, expect, it } from "vitest"
import type { SqlClient } from "../../src/db/sql.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { partitionLag } from "../../src/projections/lag.js"
import { makeProjector } from "../../src/projections/projector.js"
import { runProjectors } from "../../src/projections/runner.js"
import { useMigratedDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"
import { appendFacts, dumpTables, received, registered, truncateProjections } from "./fixtures.js"

const database = useMigratedDatabase("projector")
let sql: SqlClient
beforeAll(() => {
  sql = database()
})
beforeEach(() => truncateProjections(sql))

const drain = async (projector: ReturnType<typeof makeProjector>) => {
  for (let i = 0; i < 1000; i++) {
    const r = await Effect.runPromise(projector.step)
    if (r.caughtUp && r.projected === 0) return
  }
  throw new Error("projector never caught up")
}

describe("projector", () => {
  it("projects a bot's events into every table, with the owner on each row", async () => {
    const log = makeMemoryEventLog({ partitions: 1 })
    await appendFacts(log, "bot-a", [
      registered("owner-1", "Echo"),
      { _tag: "BotStarted", nodeId: "n1", fence: 1 },
      { _tag: "UserSeen", userId: 7, firstName: "Ann", at: "2026-01-01T09:59:00.000Z" },
      received(100, 7, 1),
      { _tag: "ReplySent", chatId: 100, messageId: 2, text: "hello", inReplyTo: 1, at: "2026-01-01T10:00:01.000Z" },
      { _tag: "BotConfigChanged", patch: { greeting: null, lang: "en" } }
    ])
    const projector = makeProjector({ log, sql, partition: 0, blockMs: 0 })
    await drain(projector)
    const bot = (await sql.query("SELECT owner_id, name, state, version, config FROM bots")).rows
    expect(bot).toEqual([{ owner_id: "owner-1", name: "Echo", state: "running", version: 6, config: { lang: "en" } }])
    const msgs = (await sql.query("SELECT direction, delivery_state, text, owner_id FROM messages ORDER BY version")).rows
    expect(msgs).toEqual([
      { direction: "in", delivery_state: "received", text: "hello", owner_id: "owner-1" },
      { direction: "out", delivery_state: "sent", text: "hello", owner_id: "owner-1" }
    ])
    const stats = (await sql.query("SELECT day::text, messages_in, messages_out, active_users, new_users FROM daily_stats")).rows
    expect(stats).toEqual([{ day: "2026-01-01", messages_in: 1, messages_out: 1, active_users: 1, new_users: 1 }])
    const user = (await sql.query("SELECT first_name, messages_in FROM bot_users")).rows
    expect(user).toEqual([{ first_name: "Ann", messages_in: 1 }])
    const chat = (await sql.query("SELECT chat_type, messages_in, messages_out FROM chats")).rows
    expect(chat).toEqual([{ chat_type: "private", messages_in: 1, messages_out: 1 }])
    const dump = await dumpTables(sql)
    expect(dump["events_archive"]).toHaveLength(6)
    expect(dump["audit_log"]!.map((r) => r.includes("BotRegistered") || r.includes("BotStarted") || r.includes("BotConfigChanged"))).toEqual([true, true, true])
    // no secret reaches the audit log or the archive's audit summary
    expect(dump["audit_log"]!.join("\n")).not.toContain("secret-ciphertext")
    expect(await Effect.runPromise(log.pendingCount(0, "projections"))).toBe(0)
  })

  it("a projector killed mid-batch leaves nothing behind; its successor projects each event once", async () => {
    const log = makeMemoryEventLog({ partitions: 1 })
    await appendFacts(log, "bot-k", [registered("owner-1"), received(1, 1, 1), received(1, 2, 2), received(2, 1, 3)])
    const killed = makeProjector({ log, sql, partition: 0, blockMs: 0, batchSize: 3, beforeCommit: () => { throw new Error("SIGKILL") } })
    const r = await Effect.runPromise(Effect.either(killed.step))
    expect(r._tag).toBe("Left")
    const empty = await dumpTables(sql)
    expect(Object.values(empty).flat()).toEqual([])

    await drain(makeProjector({ log, sql, partition: 0, blockMs: 0, batchSize: 3 }))
    const after = await dumpTables(sql)
    await truncateProjections(sql)
    await drain(makeProjector({ log, sql, partition: 0, group: "clean", blockMs: 0 }))
    expect(after).toEqual(await dumpTables(sql))
    const stats = (await sql.query("SELECT messages_in, active_users, new_users FROM daily_stats")).rows
    expect(stats).toEqual([{ messages_in: 3, active_users: 2, new_users: 2 }])
  })

  it("dead-letters what cannot be projected, with the reason, and goes on", async () => {
    const log = makeMemoryEventLog({ partitions: 1 })
    await appendFacts(log, "bot-ok", [registered("owner-1"), received(1, 1, 1)])
    const garbled = log.injectRaw(0, { eventId: "x", botId: "bot-ok", v: "3", type: "MessageReceived", schemaVersion: "1", occurredAt: "2026-01-01T00:00:00Z", correlationId: "c", causationId: "", actor: "system", data: "{not json" })
    await appendFacts(log, "bot-unknown", [received(1, 1, 1)])
    // valid to the schema, refused by Postgres (text cannot hold NUL): found by retrying one by one
    await appendFacts(log, "bot-ok", [received(1, 1, 4, "nul\u0000byte"), received(1, 1, 5, "after")])
    await drain(makeProjector({ log, sql, partition: 0, blockMs: 0 }))
    const dead = Effect.runSync(log.readDeadLetters(0))
    expect(dead.map((d) => d.reason)).toEqual([
      expect.stringContaining("MalformedJson"),
      expect.stringContaining("owner is unknown"),
      expect.stringContaining("projection failed")
    ])
    expect(dead[0]!.position).toBe(garbled)
    const texts = (await sql.query<{ text: string }>("SELECT text FROM messages ORDER BY version")).rows.map((r) => r.text)
    expect(texts).toEqual(["hello", "after"])
    expect(await Effect.runPromise(log.pendingCount(0, "projections"))).toBe(0)
  })

  it("measures lag per partition and reports a stalled projector", async () => {
    const log = makeMemoryEventLog({ partitions: 2 })
    const t0 = Date.UTC(2026, 0, 1)
    await appendFacts(log, "bot-lag", [registered("owner-1"), received(1, 1, 1), received(1, 1, 2)])
    const partition = log.partitionOf("bot-lag")
    const early = await Effect.runPromise(partitionLag({ log, sql, partition, stallAfterMs: 30_000, now: () => t0 + 5_000 }))
    expect(early).toMatchObject({ waiting: 3, oldestWaitingAgeMs: 5_000, stalled: false, checkpoint: null })
    const late = await Effect.runPromise(partitionLag({ log, sql, partition, stallAfterMs: 30_000, now: () => t0 + 60_000 }))
    expect(late).toMatchObject({ waiting: 3, stalled: true })
    await drain(makeProjector({ log, sql, partition, blockMs: 0 }))
    const done = await Effect.runPromise(partitionLag({ log, sql, partition, stallAfterMs: 30_000 }))
    expect(done).toMatchObject({ waiting: 0, oldestWaitingAgeMs: null, stalled: false })
    expect(done.checkpoint).not.toBeNull()
  })

  it("projects the same rows from the Redis Streams log as from the memory log", async () => {
    const scenario = async (log: EventLogService) => {
      await truncateProjections(sql)
      for (const bot of ["redis-a", "redis-b", "redis-c"]) {
        await appendFacts(log, bot, [registered(`owner-${bot}`), { _tag: "BotStarted", nodeId: "n", fence: 1 }, received(1, 1, 1), received(2, 2, 2)])
      }
      await appendFacts(log, "redis-a", [{ _tag: "ReplySent", chatId: 1, messageId: 3, text: "re", at: "2026-01-01T10:00:05Z" }])
      for (let p = 0; p < log.partitions; p++) await drain(makeProjector({ log, sql, partition: p, blockMs: 0, batchSize: 3 }))
      const dump = await dumpTables(sql)
      // event ids and log positions are the adapter's own: compare everything else
      const archive = (await sql.query("SELECT bot_id, version, owner_id, type, schema_version, data FROM events_archive ORDER BY 1, 2")).rows
      const audit = (await sql.query("SELECT bot_id, version, owner_id, event_type, summary FROM audit_log ORDER BY 1, 2")).rows
      return { ...dump, events_archive: archive, audit_log: audit }
    }
    const memory = await scenario(makeMemoryEventLog({ partitions: 4 }))
    const { prefix, url, cleanup } = createTestPrefix("projector")
    const redisLog = await Effect.runPromise(makeRedisEventLog({ url, prefix, partitions: 4 }))
    try {
      expect(await scenario(redisLog)).toEqual(memory)
      expect(await Effect.runPromise(redisLog.pendingCount(redisLog.partitionOf("redis-a"), "projections"))).toBe(0)
    } finally {
      await Effect.runPromise(redisLog.close)
      await cleanup()
    }
  })
})

describe("projectors at work (runner)", () => {
  it("projects a trickle of events in a few transactions, not one each, and every event once", async () => {
    const log = makeMemoryEventLog({ partitions: 1 })
    await appendFacts(log, "bot-t", [registered("owner-t", "Trickle")])
    const commits: number[] = []
    const fiber = Effect.runFork(
      runProjectors({ log, sql, idleSleep: "5 millis", coalesce: "300 millis", onCommitted: (b) => void commits.push(b.events.length) })
    )
    try {
      // an event every 40 ms, as a bot answering steadily writes them: each would find the
      // projector idle and get a transaction of its own
      for (let i = 0; i < 20; i++) {
        await appendFacts(log, "bot-t", [received(100 + i, 7, i + 1)])
        await new Promise((r) => setTimeout(r, 40))
      }
      const end = Date.now() + 20_000
      while (Date.now() < end && commits.reduce((a, b) => a + b, 0) < 21) await new Promise((r) => setTimeout(r, 20))
    } finally {
      await Effect.runPromise(Fiber.interrupt(fiber))
    }
    expect(commits.reduce((a, b) => a + b, 0)).toBe(21)
    expect(commits.length).toBeLessThanOrEqual(10)
    const msgs = (await sql.query<{ n: string }>("SELECT count(*)::text AS n FROM messages")).rows
    expect(msgs).toEqual([{ n: "20" }])
  })
})
