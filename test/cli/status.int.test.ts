import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { migrate } from "../../src/db/migrator.js"
import { makePgliteSql } from "../../src/db/pgliteSql.js"
import { makePostgresEventLog } from "../../src/events/postgresEventLog.js"
import { makePostgresInbox } from "../../src/actors/postgresInbox.js"
import { makeFleetDirectory } from "../../src/runtime/fleetDirectory.js"
import { captureCli } from "./support.js"

/*
 * `botfleet status` and `botfleet dlq retry` in embedded mode (PGlite under DATA_DIR): a bot with a
 * crash and updates waiting in its inbox, a dead-lettered log entry.
 */

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "bf-cli-status-"))
  const sql = await makePgliteSql({ dataDir: join(dir, "pglite") })
  try {
    await migrate(sql)
    const log = makePostgresEventLog({ sql, partitions: 2 })
    const inbox = makePostgresInbox({ sql, pollMs: 10_000 })
    await Effect.runPromise(
      Effect.gen(function* () {
        const lease = (yield* log.acquireLease("shop", "test", 10_000))!
        const meta = { occurredAt: "2025-01-01T00:00:00.000Z", correlationId: "c", actor: "system" }
        yield* log.append({
          botId: "shop",
          expectedVersion: 0,
          fence: lease.fence,
          events: [
            { ...meta, data: { _tag: "BotRegistered", ownerId: "o", name: "shop", kind: "builtin", mode: "sandbox" } },
            { ...meta, data: { _tag: "BotStarted", nodeId: "n1", fence: lease.fence } },
            { ...meta, data: { _tag: "BotCrashed", nodeId: "n1", reason: "handler threw: boom", attempt: 1 } }
          ]
        })
        yield* log.releaseLease(lease)
        yield* makeFleetDirectory(sql).add("shop")
        yield* inbox.enqueue("shop", { update_id: 1, message: { text: "a" } })
        yield* inbox.enqueue("shop", { update_id: 2, message: { text: "b" } })
        // a poison entry: dead-lettered by a consumer group
        const p = log.partitionOf("shop")
        yield* log.ensureGroup(p, "projector", "start")
        const delivered = yield* log.readGroup({ partition: p, group: "projector", consumer: "c1", count: 1 })
        yield* log.deadLetter({ group: "projector", delivery: delivered[0]!, reason: "projection failed: test" })
        yield* Effect.ignore(inbox.close)
      })
    )
  } finally {
    await sql.close()
  }
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const cli = (...argv: Array<string>) => captureCli({ DATA_DIR: dir, LOG_LEVEL: "warning", PARTITIONS: "2" }, argv)

describe("botfleet status", () => {
  it("shows per bot state, version, crashes, last error and inbox lag; per partition projection lag and dead letters", async () => {
    const res = await cli("status", "--json")
    expect(res.err).toBe("")
    expect(res.code).toBe(0)
    const status = JSON.parse(res.out)
    expect(status.mode).toBe("embedded")
    expect(status.bots).toEqual([
      { botId: "shop", state: "running", version: 3, name: "shop", mode: "sandbox", node: null, crashes: 1, lastError: "handler threw: boom", inboxLag: 2, inListedFleet: true, ai: null }
    ])
    expect(status.partitions).toHaveLength(2)
    const total = (k: string) => status.partitions.reduce((n: number, p: Record<string, number>) => n + p[k]!, 0)
    expect(total("projectionLag")).toBe(3)
    expect(total("deadLetters")).toBe(1)

    const table = await cli("status")
    expect(table.code).toBe(0)
    expect(table.out).toContain("1 bot in the fleet directory")
    expect(table.out).toMatch(/shop\s+shop\s+running\s+3\s+sandbox\s+-\s+1\s+2\s+handler threw: boom/)
  })
})

describe("botfleet dlq retry (embedded)", () => {
  it("puts a dead letter back among its group's pending entries, removes it from the list; the group's reclaim redelivers it", async () => {
    const listed = JSON.parse((await cli("dlq", "list", "--json")).out) as Array<{ partition: number; id: string; group: string }>
    expect(listed).toHaveLength(1)
    const { partition, id } = listed[0]!
    expect((await cli("dlq", "retry", String(partition), "999999")).code).toBe(1)
    expect((await cli("dlq", "retry", String(partition))).code).toBe(2)
    const res = await cli("dlq", "retry", String(partition), id, "--json")
    expect(res.err).toBe("")
    expect(res.code).toBe(0)
    expect(JSON.parse(res.out)).toMatchObject({ retried: [{ partition, id, group: "projector" }] })
    expect(JSON.parse((await cli("dlq", "list", "--json")).out)).toEqual([])

    const sql = await makePgliteSql({ dataDir: join(dir, "pglite") })
    try {
      const log = makePostgresEventLog({ sql, partitions: 2 })
      const again = await Effect.runPromise(log.reclaim({ partition, group: "projector", consumer: "c2", minIdleMs: 1_000, count: 10 }))
      expect(again.deliveries).toHaveLength(1)
      expect(again.deliveries[0]!.event._tag).toBe("Right")
    } finally {
      await sql.close()
    }
  })
})
