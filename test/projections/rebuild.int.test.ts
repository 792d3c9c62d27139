import { Effect, Either } from "effect"
import { beforeAll, describe, expect, it } from "vitest"
import type { SqlClient } from "../../src/db/sql.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import type { DomainEvent } from "../../src/events/schema/catalogue.js"
import { PROJECTIONS } from "../../src/projections/mapping/rows.js"
import { makeProjector } from "../../src/projections/projector.js"
import type { Projector } from "../../src/projections/projector.js"
import { rebuild } from "../../src/projections/rebuild.js"
import type { RebuildProgress } from "../../src/projections/rebuild.js"
import { useMigratedDatabase } from "../support/db.js"
import { appendFacts, dumpTables, received, registered, truncateProjections } from "./fixtures.js"

const database = useMigratedDatabase("projection_rebuild")
let sql: SqlClient
beforeAll(() => {
  sql = database()
})

const drain = async (p: Projector) => {
  for (let i = 0; i < 10_000; i++) {
    const r = await Effect.runPromise(p.step)
    if (r.caughtUp && r.projected === 0) return
  }
  throw new Error("never caught up")
}

const traffic = (n: number): DomainEvent[] =>
  Array.from({ length: n }, (_, i): DomainEvent[] => [
    received(i % 3, 100 + (i % 4), i * 2, `m${i}`),
    { _tag: "ReplySent", chatId: i % 3, messageId: i * 2 + 1, text: `r${i}`, at: `2026-01-0${1 + (i % 3)}T12:00:00Z` },
    ...(i % 5 === 0 ? [{ _tag: "UserSeen", userId: 100 + (i % 4), firstName: `U${i}`, at: "2026-01-01T11:00:00Z" } as DomainEvent] : []),
    ...(i % 7 === 0 ? [{ _tag: "BotConfigChanged", patch: { step: i, drop: null } } as DomainEvent] : [])
  ]).flat()

const fleet = async (log: ReturnType<typeof makeMemoryEventLog>) => {
  for (const [i, bot] of ["r1", "r2", "r3", "r4", "r5"].entries()) {
    await appendFacts(log, bot, [registered(`owner-${i % 2}`, bot), { _tag: "BotStarted", nodeId: "n", fence: 1 }, ...traffic(10 + i * 3)])
  }
}

describe("rebuild", () => {
  it("rebuilds every projection from the archive identical to the live tables, keeping policies, grants and partitions", async () => {
    await truncateProjections(sql)
    const log = makeMemoryEventLog({ partitions: 2 })
    await fleet(log)
    for (const p of [0, 1]) await drain(makeProjector({ log, sql, partition: p, blockMs: 0, batchSize: 17 }))
    const live = await dumpTables(sql)
    const phases = new Set<RebuildProgress["phase"]>()
    for (const projection of PROJECTIONS.filter((p) => p !== "archive")) {
      const report = await Effect.runPromise(rebuild({ sql, projection, batchSize: 40, onProgress: (p) => phases.add(p.phase) }))
      expect({ projection, identical: report.identical, swapped: report.swapped, undecodable: report.undecodable })
        .toEqual({ projection, identical: true, swapped: true, undecodable: 0 })
      for (const t of report.tables) expect(t.liveHash).toBe(t.rebuiltHash)
    }
    expect([...phases].sort()).toEqual(["catch-up", "compare", "copy", "swap"])
    expect(await dumpTables(sql)).toEqual(live)
    const policies = await sql.query<{ n: string }>("SELECT count(*) AS n FROM pg_policies WHERE tablename = 'messages'")
    expect(policies.rows[0]!.n).toBe("2")
    const grants = await sql.query<{ api: boolean; projector: boolean }>(
      "SELECT has_table_privilege('botfleet_api', 'messages', 'SELECT') AS api, has_table_privilege('botfleet_projector', 'bots', 'INSERT') AS projector")
    expect(grants.rows[0]).toEqual({ api: true, projector: true })
    const parts = await sql.query<{ n: string }>("SELECT count(*) AS n FROM pg_inherits WHERE inhparent = 'messages'::regclass")
    expect(parts.rows[0]!.n).toBe("16")
    const partitionName = await sql.query("SELECT to_regclass('messages_p07') IS NOT NULL AS ok")
    expect(partitionName.rows[0]).toEqual({ ok: true })
    const views = await sql.query<{ n: string }>("SELECT count(*) AS n FROM fleet_overview")
    expect(views.rows[0]!.n).toBe("5")
  })

  it("reports rows that disagree with the events, and replaces them with what the events say", async () => {
    await truncateProjections(sql)
    const log = makeMemoryEventLog({ partitions: 1 })
    await fleet(log)
    await drain(makeProjector({ log, sql, partition: 0, blockMs: 0 }))
    const truth = await dumpTables(sql)
    await sql.exec("UPDATE messages SET text = 'tampered' WHERE bot_id = 'r2' AND version = 3; DELETE FROM chats WHERE bot_id = 'r1' AND chat_id = 0")

    const dry = await Effect.runPromise(rebuild({ sql, projection: "messages", swap: false }))
    expect(dry.identical).toBe(false)
    expect(dry.tables).toEqual([expect.objectContaining({ table: "messages", onlyLive: 1, onlyRebuilt: 1 })])
    expect((await dumpTables(sql))["messages"]).not.toEqual(truth["messages"])

    const messages = await Effect.runPromise(rebuild({ sql, projection: "messages" }))
    const users = await Effect.runPromise(rebuild({ sql, projection: "users" }))
    expect(messages.identical).toBe(false)
    expect(users.tables).toEqual([
      expect.objectContaining({ table: "bot_users", onlyLive: 0, onlyRebuilt: 0 }),
      expect.objectContaining({ table: "chats", onlyLive: 0, onlyRebuilt: 1 }),
      expect.objectContaining({ table: "bot_sessions", onlyLive: 0, onlyRebuilt: 0 }),
      expect.objectContaining({ table: "imported_records", onlyLive: 0, onlyRebuilt: 0 })
    ])
    expect(await dumpTables(sql)).toEqual(truth)
  })

  it("runs while the projector keeps projecting, and ends equal to a clean pass", async () => {
    await truncateProjections(sql)
    const log = makeMemoryEventLog({ partitions: 1 })
    await fleet(log)
    const projector = makeProjector({ log, sql, partition: 0, blockMs: 0, batchSize: 7 })
    await drain(projector)
    let concurrent: Promise<void> | undefined
    const report = await Effect.runPromise(
      rebuild({
        sql,
        projection: "daily_stats",
        batchSize: 10,
        onProgress: (p) => {
          // new traffic arrives and is projected while the copy runs
          if (p.phase === "copy" && p.done > 0 && !concurrent) {
            concurrent = appendFacts(log, "r3", traffic(6)).then(() => drain(projector))
          }
        }
      })
    )
    await concurrent
    await drain(projector)
    expect(report.swapped).toBe(true)
    const after = await dumpTables(sql)
    await truncateProjections(sql)
    await drain(makeProjector({ log, sql, partition: 0, group: "clean", blockMs: 0 }))
    expect(after).toEqual(await dumpTables(sql))
  })

  it("refuses to rebuild the archive from itself", async () => {
    const r = await Effect.runPromise(Effect.either(rebuild({ sql, projection: "archive" })))
    expect(Either.isLeft(r) && r.left.reason).toMatch(/source of rebuilds/)
  })
})
