import { Effect, Either, Layer } from "effect"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { migrate } from "../../src/db/migrator.js"
import { makePgSql, PgSqlLive } from "../../src/db/pgSql.js"
import type { SqlClient } from "../../src/db/sql.js"
import type { AppendRequest, EventLogService, Lease } from "../../src/events/eventLog.js"
import { EventLog } from "../../src/events/eventLog.js"
import { makePostgresEventLog, PostgresEventLogLive } from "../../src/events/postgresEventLog.js"
import type { RawFields } from "../../src/events/eventLog.js"
import { createTestDatabase } from "../support/db.js"
import { newEvent, updateReceived, userSeen } from "../support/events.js"

const run = <A, E>(eff: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(eff)
const attempt = <A, E>(eff: Effect.Effect<A, E>) => Effect.runPromise(Effect.either(eff))

describe("Postgres log appends (server)", () => {
  let db: { url: string; drop: () => Promise<void> }
  let sql: SqlClient
  let log: EventLogService & { readonly injectRaw: (partition: number, fields: RawFields) => Promise<string> }
  let seq = 0
  const bot = (label: string) => `${label}-${++seq}`
  const lease = async (botId: string): Promise<Lease> => (await run(log.acquireLease(botId, "node-a", 60_000)))!

  beforeAll(async () => {
    db = await createTestDatabase("pglog_append")
    sql = makePgSql(db.url, { max: 8 })
    await migrate(sql)
    log = makePostgresEventLog({ sql })
  })
  afterAll(async () => {
    await sql.close()
    await db.drop()
  })

  /** A row written by a writer that ignores the stream lock and the streams table. */
  const sneakIn = (botId: string, version: number) =>
    sql.query(
      `INSERT INTO events (partition, bot_id, version, event_id, type, schema_version, occurred_at, correlation_id, actor, data)
       VALUES ($1, $2, $3, 'sneaky', 'UpdateReceived', 1, '2026-11-26T10:00:00Z', 'c', 'system', '{}')`,
      [log.partitionOf(botId), botId, version]
    )

  it("maps a unique violation from a writer that bypassed the locks to WrongExpectedVersion, writing nothing", async () => {
    const b = bot("bypass")
    const l = await lease(b)
    await sneakIn(b, 1)
    const r = await attempt(log.append({ botId: b, expectedVersion: 0, fence: l.fence, events: [newEvent(updateReceived(1)), newEvent(updateReceived(2))] }))
    expect(Either.isLeft(r) && r.left).toMatchObject({ _tag: "WrongExpectedVersion", expected: 0, actual: 1 })
    const { rows } = await sql.query("SELECT event_id FROM events WHERE bot_id = $1", [b])
    expect(rows).toEqual([{ event_id: "sneaky" }])
  })

  it("maps a unique violation raised at insert (a bypassing writer commits first) to WrongExpectedVersion", async () => {
    const b = bot("race-bypass")
    const l = await lease(b)
    const other = new pg.Client({ connectionString: db.url })
    await other.connect()
    try {
      await other.query("BEGIN")
      await other.query(
        `INSERT INTO events (partition, bot_id, version, event_id, type, schema_version, occurred_at, correlation_id, actor, data)
         VALUES ($1, $2, 1, 'sneaky', 'UpdateReceived', 1, '2026-11-26T10:00:00Z', 'c', 'system', '{}')`,
        [log.partitionOf(b), b]
      )
      // our insert waits on the unique index for the open transaction, which then commits (had the
      // append not reached its insert yet, its check would see the row: the same answer either way)
      const pending = attempt(log.append({ botId: b, expectedVersion: 0, fence: l.fence, events: [newEvent(updateReceived(1))] }))
      await new Promise((r) => setTimeout(r, 200))
      await other.query("COMMIT")
      const r = await pending
      expect(Either.isLeft(r) && r.left).toMatchObject({ _tag: "WrongExpectedVersion", expected: 0, actual: 1 })
    } finally {
      await other.end()
    }
  })

  it("appendMany: a collision or an invalid event fails only its own append", async () => {
    const [a, b, c] = [bot("many"), bot("many"), bot("many")]
    const [la, lb, lc] = await Promise.all([lease(a), lease(b), lease(c)])
    await sneakIn(b, 1)
    const results = await run(
      log.appendMany([
        { botId: a, expectedVersion: 0, fence: la.fence, events: [newEvent(updateReceived(1))] },
        { botId: b, expectedVersion: 0, fence: lb.fence, events: [newEvent(updateReceived(1))] },
        { botId: c, expectedVersion: 0, fence: lc.fence, events: [{ ...newEvent(userSeen(1)), actor: "" }] },
        { botId: c, expectedVersion: 0, fence: lc.fence + 1, events: [newEvent(updateReceived(1))] },
        { botId: c, expectedVersion: 0, fence: lc.fence, events: [newEvent(updateReceived(1))] },
        { botId: a, expectedVersion: 1, fence: la.fence, events: [newEvent(updateReceived(2))] }
      ])
    )
    expect(results.map((r) => (Either.isRight(r) ? r.right.version : r.left._tag))).toEqual([
      1, "WrongExpectedVersion", "InvalidEvent", "StaleFence", 1, 2
    ])
    expect((await run(log.readStream(a))).map((e) => e.version)).toEqual([1, 2])
    expect((await run(log.readStream(c))).map((e) => e.version)).toEqual([1])
  })

  it("keeps a foreign entry in the partition log only, never in the bot's stream", async () => {
    const b = bot("foreign")
    const l = await lease(b)
    const position = await log.injectRaw(log.partitionOf(b), { eventId: "f-1", botId: b, v: "1", type: "UpdateReceived", data: "{oops" })
    await run(log.append({ botId: b, expectedVersion: 0, fence: l.fence, events: [newEvent(updateReceived(1))] }))
    expect((await run(log.readStream(b))).map((e) => e.version)).toEqual([1])
    expect((await run(log.readStream(b, { direction: "backward" }))).map((e) => e.version)).toEqual([1])
    const inLog = (await run(log.readPartition(log.partitionOf(b)))).filter((d) => d.raw["botId"] === b)
    expect(inLog.map((d) => [d.position, d.raw["eventId"] ?? Either.getOrThrow(d.event).eventId])).toEqual([
      [position, "f-1"],
      [inLog[1]!.position, Either.getOrThrow(inLog[1]!.event).eventId]
    ])
    expect(Either.isLeft(inLog[0]!.event) && inLog[0]!.event.left.reason).toBe("MissingField")
  })

  it("is provided as a Layer over the Sql service", async () => {
    const b = bot("layer")
    const program = Effect.gen(function* () {
      const el = yield* EventLog
      const l = (yield* el.acquireLease(b, "node-layer", 60_000))!
      yield* el.append({ botId: b, expectedVersion: 0, fence: l.fence, events: [newEvent(updateReceived(1))] })
      return yield* el.streamVersion(b)
    })
    const layer = PostgresEventLogLive().pipe(Layer.provide(PgSqlLive(db.url, { max: 2 })))
    expect(await Effect.runPromise(Effect.scoped(Effect.provide(program, layer)))).toBe(1)
  })

  it("concurrent batches over shared bots keep every bot gapless and in order in its partition log", async () => {
    const bots = Array.from({ length: 12 }, () => bot("conc"))
    const fences = new Map(await Promise.all(bots.map(async (b) => [b, (await lease(b)).fence] as const)))
    // 6 writers, each appending to a random subset of bots, retrying on conflicts
    const writer = (w: number) =>
      Effect.gen(function* () {
        for (let round = 0; round < 8; round++) {
          const mine = bots.filter((_, i) => (i + w + round) % 3 !== 0)
          let todo = mine
          while (todo.length > 0) {
            const versions = yield* Effect.forEach(todo, (b) => log.streamVersion(b))
            const reqs: AppendRequest[] = todo.map((b, i) => ({
              botId: b,
              expectedVersion: versions[i]!,
              fence: fences.get(b)!,
              events: [newEvent(updateReceived(w * 100 + round))]
            }))
            const rs = yield* log.appendMany(reqs)
            todo = todo.filter((_, i) => Either.isLeft(rs[i]!))
          }
        }
      })
    await run(Effect.all(Array.from({ length: 6 }, (_, w) => writer(w)), { concurrency: "unbounded" }))
    for (const p of new Set(bots.map((b) => log.partitionOf(b)))) {
      // (the sneaked-in rows of the other tests do not decode: skip them)
      const entries = (await run(log.readPartition(p))).flatMap((d) => (Either.isRight(d.event) ? [d.event.right] : []))
      for (const b of bots.filter((x) => log.partitionOf(x) === p)) {
        const versions = entries.filter((e) => e.botId === b).map((e) => e.version)
        expect(versions).toEqual(Array.from({ length: versions.length }, (_, i) => i + 1))
        expect(versions.length).toBe(await run(log.streamVersion(b)))
      }
    }
  })
})
