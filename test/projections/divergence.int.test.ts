import { Effect } from "effect"
import { beforeAll, describe, expect, it } from "vitest"
import type { SqlClient } from "../../src/db/sql.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import { DIVERGED_REASON, HELD_REASON, readDivergences } from "../../src/projections/divergence.js"
import { makeProjector } from "../../src/projections/projector.js"
import { useMigratedDatabase } from "../support/db.js"
import { appendFacts, received, registered } from "./fixtures.js"

/*
 * The projector compares what it archives with what the archive holds at that version: the same
 * event again is skipped (never counted twice), another event there is a divergence, reported
 * and held, whether the projected versions foresaw it or not.
 */

const run = Effect.runPromise
const database = useMigratedDatabase("divergence")
let sql: SqlClient
beforeAll(() => {
  sql = database()
})

const drain = async (log: EventLogService) => {
  const p = makeProjector({ log, sql, partition: 0, blockMs: 0, batchSize: 4 })
  let dead = 0
  for (let i = 0; i < 100; i++) {
    const r = await run(p.step)
    dead += r.deadLettered
    if (r.caughtUp && r.projected === 0 && r.deadLettered === 0) return dead
  }
  throw new Error("never caught up")
}

/** A new hot log holding the first `keep` events of `from`'s stream as they were (same ids): what Redis kept. */
const keptCopy = async (from: EventLogService, keep: ReadonlyArray<readonly [string, number]>) => {
  const log = makeMemoryEventLog({ partitions: 1 })
  for (const [botId, n] of keep) {
    const events = (await run(from.readStream(botId))).slice(0, n)
    const lease = (await run(log.acquireLease(botId, "test-node", 3_600_000)))!
    await run(log.append({ botId, expectedVersion: 0, fence: lease.fence, events: events.map((e) => ({ data: e.data, eventId: e.eventId, occurredAt: e.occurredAt, correlationId: e.correlationId, causationId: e.causationId, actor: e.actor })) }))
  }
  return log
}

const count = async (q: string) => Number((await sql.query<{ n: string }>(q)).rows[0]!.n)

describe("hot log vs archive", () => {
  it("skips copies already archived without counting them twice, and holds a bot from its first diverged version", async () => {
    const first = makeMemoryEventLog({ partitions: 1 })
    await appendFacts(first, "dv", [registered("owner-v", "dv"), ...Array.from({ length: 7 }, (_, i) => received(1, 2, i + 1))])
    await appendFacts(first, "calm", [registered("owner-c", "calm"), received(3, 4, 1)])
    expect(await drain(first)).toBe(0)
    const before = await count("SELECT messages_in AS n FROM daily_stats WHERE bot_id = 'dv'")
    expect(before).toBe(7)

    // the hot log replaced (Redis lost its tail): versions 1..5 kept as they were, then the bot went on
    const second = await keptCopy(first, [["dv", 5], ["calm", 2]])
    await appendFacts(second, "dv", Array.from({ length: 4 }, (_, i) => received(1, 2, 100 + i)))
    await appendFacts(second, "calm", [received(3, 4, 2)])
    await sql.exec("UPDATE projection_checkpoints SET position = ''")
    expect(await drain(second)).toBe(4)

    // the copies were skipped: no message counted twice; the diverged and later ones held
    expect(await count("SELECT messages_in AS n FROM daily_stats WHERE bot_id = 'dv'")).toBe(7)
    const dead = await run(second.readDeadLetters(0))
    expect(dead.map((d) => [d.raw["v"], d.reason.startsWith(DIVERGED_REASON) ? "diverged" : d.reason.startsWith(HELD_REASON) ? "held" : d.reason])).toEqual([
      ["6", "diverged"], ["7", "held"], ["8", "held"], ["9", "held"]
    ])
    expect(await readDivergences(sql)).toEqual([expect.objectContaining({ botId: "dv", version: 6, ownerId: "owner-v", archivedType: "MessageReceived", logType: "MessageReceived" })])
    // the archive kept its events; the other bot went on
    expect(await count("SELECT count(*) AS n FROM events_archive WHERE bot_id = 'dv'")).toBe(8)
    expect(await count("SELECT count(*) AS n FROM events_archive WHERE bot_id = 'calm'")).toBe(3)
  })

  it("a row inserted into the archive ahead of the real event (what a projector-role session could do) makes the real one a divergence, not a silent drop", async () => {
    const log = makeMemoryEventLog({ partitions: 1 })
    await appendFacts(log, "fg", [registered("owner-f", "fg"), received(1, 2, 1)])
    // the projector starts on this log from its beginning
    await sql.exec("UPDATE projection_checkpoints SET position = ''")
    expect(await drain(log)).toBe(0)
    // version 3 forged into the archive before the bot writes it
    await sql.transaction(async (tx) => {
      await tx.query("SET LOCAL ROLE botfleet_projector")
      await tx.query(
        `INSERT INTO events_archive (bot_id, version, owner_id, log_partition, position, event_id, type, schema_version, occurred_at, correlation_id, actor, data)
         VALUES ('fg', 3, 'owner-f', 0, 'x', 'forged-id', 'BotStopped', 1, now(), 'c', 'system', '{"nodeId":"n","reason":"forged"}')`
      )
    })
    await appendFacts(log, "fg", [received(1, 2, 2)])
    expect(await drain(log)).toBe(1)
    const dead = await run(log.readDeadLetters(0))
    expect(dead.at(-1)!.reason).toContain("bot fg version 3: the archive holds event forged-id (BotStopped)")
    expect((await readDivergences(sql)).filter((d) => d.botId === "fg")).toEqual([expect.objectContaining({ version: 3, archivedEventId: "forged-id" })])
  })
})
