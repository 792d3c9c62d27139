import { randomUUID } from "node:crypto"
import { Effect, Either } from "effect"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { migrate } from "../../src/db/migrator.js"
import { makePgSql } from "../../src/db/pgSql.js"
import type { SqlClient } from "../../src/db/sql.js"
import { encodeNewEvent } from "../../src/events/codec.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makePostgresEventLog } from "../../src/events/postgresEventLog.js"
import { createTestDatabase } from "../support/db.js"
import { newEvent, updateReceived } from "../support/events.js"

const run = <A, E>(eff: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(eff)

/**
 * Transactions that commit out of order, on two real connections. Rows are inserted the way the
 * adapter inserts them, but in transactions the test opens and commits itself.
 */
describe("Postgres partition log: out-of-order commits are never skipped", () => {
  let db: { url: string; drop: () => Promise<void> }
  let sql: SqlClient
  let log: EventLogService
  const clients: pg.Client[] = []
  const partition = 4
  let botSeq = 0

  beforeAll(async () => {
    db = await createTestDatabase("pglog_visibility")
    sql = makePgSql(db.url)
    await migrate(sql)
    // a short settle wait: the test holds transactions open on purpose
    log = makePostgresEventLog({ sql, settleWaitMs: 50 })
    for (let i = 0; i < 2; i++) {
      const c = new pg.Client({ connectionString: db.url })
      await c.connect()
      clients.push(c)
    }
  })
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.end()))
    await sql.close()
    await db.drop()
  })

  const botInPartition = () => {
    for (;;) {
      const id = `vis-${++botSeq}`
      if (log.partitionOf(id) === partition) return id
    }
  }

  /** Inserts one event as the adapter would, on `client`, inside whatever transaction it has open. */
  const insertEvent = async (client: pg.Client, botId: string, version: number): Promise<string> => {
    const e = Either.getOrThrow(encodeNewEvent(botId, newEvent(updateReceived(version)), randomUUID))
    const { rows } = await client.query<{ position: string }>(
      `INSERT INTO events (partition, bot_id, version, event_id, type, schema_version, occurred_at, correlation_id, actor, data)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb) RETURNING position`,
      [partition, botId, version, e.eventId, e.type, e.schemaVersion, e.occurredAt, e.correlationId, e.actor, e.data]
    )
    return rows[0]!.position
  }

  const botsOf = (ds: ReadonlyArray<{ event: Either.Either<{ botId: string }, unknown> }>) => ds.map((d) => Either.getOrThrow(d.event).botId)

  it("a reader does not see n+1 while n is uncommitted, then sees both in order", async () => {
    const [c1, c2] = clients as [pg.Client, pg.Client]
    const b1 = botInPartition()
    const b2 = botInPartition()
    await run(log.ensureGroup(partition, "g-order", "start"))
    const before = await run(log.readPartition(partition))

    await c1.query("BEGIN")
    const n = await insertEvent(c1, b1, 1)
    await c2.query("BEGIN")
    const n1 = await insertEvent(c2, b2, 1)
    await c2.query("COMMIT")
    expect(BigInt(n1)).toBe(BigInt(n) + 1n)

    // T2 has committed n+1, but T1 (holding n) is still open: neither is readable yet
    const whileOpen = await run(log.readPartition(partition))
    expect(whileOpen).toHaveLength(before.length)
    expect(await run(log.readGroup({ partition, group: "g-order", consumer: "c", count: 10 }))).toEqual([])

    await c1.query("COMMIT")
    const after = await run(log.readPartition(partition))
    expect(botsOf(after.slice(before.length))).toEqual([b1, b2])
    const delivered = await run(log.readGroup({ partition, group: "g-order", consumer: "c", count: 10 }))
    expect(botsOf(delivered)).toEqual([b1, b2])
  })

  it("a consumer group gets every entry exactly once when an older transaction takes the later position", async () => {
    const [c1, c2] = clients as [pg.Client, pg.Client]
    const b1 = botInPartition()
    const b2 = botInPartition()
    const b3 = botInPartition()
    await run(log.ensureGroup(partition, "g-once", "end"))

    // T1 gets its transaction id first, but takes its position only after T2 has taken and committed one
    await c1.query("BEGIN")
    await c1.query("SELECT pg_current_xact_id()")
    await c2.query("BEGIN")
    const early = await insertEvent(c2, b2, 1)
    await c2.query("COMMIT")
    const late = await insertEvent(c1, b1, 1)
    expect(BigInt(late)).toBeGreaterThan(BigInt(early))

    const seen: string[] = []
    const take = async () => {
      const ds = await run(log.readGroup({ partition, group: "g-once", consumer: "c", count: 10 }))
      seen.push(...botsOf(ds))
      await run(log.ack(partition, "g-once", ds.map((d) => d.position)))
    }
    await take()
    expect(seen).toEqual([])
    await c1.query("COMMIT")
    await take()
    // a later, ordinary append is delivered after both
    await c2.query("BEGIN")
    await insertEvent(c2, b3, 1)
    await c2.query("COMMIT")
    await take()
    await take()
    // the older transaction comes first in the partition log, then the other: none skipped, none twice
    expect(seen).toEqual([b1, b2, b3])
    expect(await run(log.pendingCount(partition, "g-once"))).toBe(0)
  })

  it("a group read cut short by the horizon returns what it delivered, and the rest later", async () => {
    const [c1, c2] = clients as [pg.Client, pg.Client]
    const [b0, b1, b2] = [botInPartition(), botInPartition(), botInPartition()]
    await run(log.ensureGroup(partition, "g-cut", "end"))
    await c2.query("BEGIN")
    await insertEvent(c2, b0, 1)
    await c2.query("COMMIT")
    await c1.query("BEGIN")
    await insertEvent(c1, b1, 1)
    await c2.query("BEGIN")
    await insertEvent(c2, b2, 1)
    await c2.query("COMMIT")
    const first = await run(log.readGroup({ partition, group: "g-cut", consumer: "c", count: 10 }))
    expect(botsOf(first)).toEqual([b0])
    await c1.query("COMMIT")
    const rest = await run(log.readGroup({ partition, group: "g-cut", consumer: "c", count: 10 }))
    expect(botsOf(rest)).toEqual([b1, b2])
    expect(await run(log.pendingCount(partition, "g-cut"))).toBe(3)
  })

  it("is not held back by a writing transaction of another database on the same server", async () => {
    const other = await createTestDatabase("pglog_visibility_other")
    const stranger = new pg.Client({ connectionString: other.url })
    await stranger.connect()
    try {
      await stranger.query("BEGIN")
      await stranger.query("SELECT pg_current_xact_id()")
      const b = botInPartition()
      const l = (await run(log.acquireLease(b, "n", 60_000)))!
      const r = await run(log.append({ botId: b, expectedVersion: 0, fence: l.fence, events: [newEvent(updateReceived(1))] }))
      const seen = await run(log.readPartition(partition))
      expect(seen.map((d) => d.position)).toContain(r.positions[0])
      await stranger.query("ROLLBACK")
    } finally {
      await stranger.end()
      await other.drop()
    }
  })

  it("holds a committed entry only until the older transaction ends, even when it rolls back", async () => {
    const [c1, c2] = clients as [pg.Client, pg.Client]
    const b1 = botInPartition()
    const b2 = botInPartition()
    const before = (await run(log.readPartition(partition))).length
    await c1.query("BEGIN")
    await insertEvent(c1, b1, 1)
    await c2.query("BEGIN")
    await insertEvent(c2, b2, 1)
    await c2.query("COMMIT")
    expect(await run(log.readPartition(partition))).toHaveLength(before)
    await c1.query("ROLLBACK")
    expect(botsOf((await run(log.readPartition(partition))).slice(before))).toEqual([b2])
  })
})
