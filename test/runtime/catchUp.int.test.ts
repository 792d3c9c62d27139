import { Effect, Logger, LogLevel } from "effect"
import { describe, expect, it } from "vitest"
import { makePgSql } from "../../src/db/pgSql.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import { projectionLag } from "../../src/projections/lag.js"
import { catchUpProjections } from "../../src/runtime/projections.js"
import { useMigratedDatabase } from "../support/db.js"
import { freePort } from "../support/privateRedis.js"
import { appendFacts, received, registered } from "../projections/fixtures.js"

/* The projections' catch-up a stopping node runs before its database closes. */

const sql = useMigratedDatabase("catch_up")
const quiet = <A, E>(e: Effect.Effect<A, E>) => Effect.runPromise(e.pipe(Effect.provide(Logger.minimumLogLevel(LogLevel.None))))

describe("catching up the projections at stop", () => {
  it("projects everything the log holds past the checkpoints, in every partition, and tells what it did", async () => {
    const log = makeMemoryEventLog({ partitions: 4 })
    const bots = ["amber", "basil", "cedar", "dill"]
    for (const b of bots) await appendFacts(log, b, [registered("o1", b), received(1, 7, 1), received(1, 7, 2)])
    const committed: number[] = []
    const r = await quiet(catchUpProjections({ log, sql: sql(), onCommitted: (b) => void committed.push(b.events.length) }))
    expect(r).toEqual({ projected: 12, behind: [] })
    expect(committed.reduce((a, b) => a + b, 0)).toBe(12)
    const lag = await Effect.runPromise(projectionLag({ log, sql: sql() }))
    expect(lag.map((l) => l.waiting)).toEqual([0, 0, 0, 0])
    // nothing more to do: a second catch-up projects nothing
    expect(await quiet(catchUpProjections({ log, sql: sql() }))).toEqual({ projected: 0, behind: [] })
  })

  it("names the partitions it could not bring up to date, within its deadline, when the database does not answer", async () => {
    const log = makeMemoryEventLog({ partitions: 3 })
    await appendFacts(log, "elm", [registered("o1", "elm")])
    const unreachable = makePgSql(`postgres://postgres@127.0.0.1:${await freePort()}/nothing`, { max: 1 })
    try {
      const started = Date.now()
      const r = await quiet(catchUpProjections({ log, sql: unreachable, timeoutMs: 5_000 }))
      expect(r).toEqual({ projected: 0, behind: [0, 1, 2] })
      expect(Date.now() - started).toBeLessThan(15_000)
    } finally {
      await unreachable.close()
    }
    const out = await quiet(catchUpProjections({ log, sql: sql(), timeoutMs: 0 }))
    expect(out).toEqual({ projected: 0, behind: [0, 1, 2] })
  })
})
