import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { makePostgresSnapshotStore } from "../../src/actors/postgresSnapshotStore.js"
import { migrate } from "../../src/db/migrator.js"
import { makePgliteSql } from "../../src/db/pgliteSql.js"
import type { SqlClient } from "../../src/db/sql.js"
import { makePostgresEventLog } from "../../src/events/postgresEventLog.js"
import { makeProjector } from "../../src/projections/projector.js"
import { vacuumEmbeddedLog } from "../../src/runtime/trimming.js"
import { makePostgresTrimLedger } from "../../src/trim/trimLedger.js"
import { makeTrimmer } from "../../src/trim/trimmer.js"
import { appendFacts, received, registered } from "../projections/fixtures.js"

/*
 * Embedded mode (PGlite, which runs no autovacuum): under a steady load with the trimmer, the
 * log's table stops growing once the windows are full, because each round that removed rows
 * vacuums it. The same rounds without the vacuum keep growing: the test can tell.
 */

const run = Effect.runPromise
const PARTITIONS = 4
const BOTS = ["alpha", "bravo", "charlie", "delta"]

const eventsSize = async (sql: SqlClient) =>
  Number(
    (
      await sql.query<{ n: string }>(
        "SELECT sum(pg_relation_size(i.inhrelid))::text AS n FROM pg_inherits i WHERE i.inhparent = 'events'::regclass"
      )
    ).rows[0]!.n
  )

/** Rounds of traffic, projection, snapshots and a trim; the table size after each round. */
const rounds = async (vacuum: boolean, n: number) => {
  const sql = await makePgliteSql()
  try {
    await migrate(sql)
    const log = makePostgresEventLog({ sql, partitions: PARTITIONS })
    const snapshots = makePostgresSnapshotStore(sql)
    const trimmer = makeTrimmer({ log, ledger: makePostgresTrimLedger(sql), snapshotVersion: (b) => snapshots.version(b), nodeId: "embedded", hotEvents: 20, maxAgeMs: 0 })
    for (const bot of BOTS) await appendFacts(log, bot, [registered("o", bot)])
    const sizes: number[] = []
    for (let r = 0; r < n; r++) {
      for (const bot of BOTS) await appendFacts(log, bot, Array.from({ length: 150 }, (_, i) => received(1, 1, r * 1000 + i, `round ${r} message ${i} `.repeat(8))))
      for (let p = 0; p < PARTITIONS; p++) {
        const projector = makeProjector({ log, sql, partition: p, blockMs: 0 })
        for (;;) if ((await run(projector.step)).caughtUp) break
      }
      for (const bot of BOTS) await run(snapshots.save(bot, { version: await run(log.streamVersion(bot)), schemaVersion: 1, fence: 1, state: {} }, []))
      let removed = 0
      for (let p = 0; p < PARTITIONS; p++) {
        const report = await run(trimmer.trimPartition(p))
        removed += report.removedFromStreams + report.removedFromPartition
      }
      if (vacuum) await run(vacuumEmbeddedLog(sql)(removed))
      sizes.push(await eventsSize(sql))
    }
    const { rows } = await sql.query<{ n: number }>("SELECT count(*)::int AS n FROM events")
    return { sizes, rows: rows[0]!.n }
  } finally {
    await sql.close()
  }
}

describe("embedded mode stays bounded on disk", () => {
  it("the log's table stops growing under steady traffic once trimmed rows are vacuumed", async () => {
    const vacuumed = await rounds(true, 8)
    expect(vacuumed.rows).toBe(BOTS.length * 20)
    // from the third round on, the space of the rows trimmed is reused
    expect(vacuumed.sizes[7]!).toBeLessThanOrEqual(vacuumed.sizes[2]! * 1.1)
    const unvacuumed = await rounds(false, 8)
    expect(unvacuumed.rows).toBe(BOTS.length * 20)
    expect(unvacuumed.sizes[7]!).toBeGreaterThan(unvacuumed.sizes[2]! * 1.5)
  }, 240_000)
})
