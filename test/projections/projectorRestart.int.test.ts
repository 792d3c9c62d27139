import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { SqlClient } from "../../src/db/sql.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import { makeProjector } from "../../src/projections/projector.js"
import { useMigratedDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"
import { appendFacts, received, registered } from "./fixtures.js"

/*
 * A projector restarted while its consumer had 1,000 or more entries pending (a node stopped in
 * the middle of a backlog): its first step must not hand out the same pending entries forever.
 */

const database = useMigratedDatabase("projector_restart")
const redis = createTestPrefix("projrestart")
let sql: SqlClient
let log: EventLogService
beforeAll(async () => {
  sql = database()
  log = await Effect.runPromise(makeRedisEventLog({ url: redis.url, prefix: redis.prefix, partitions: 1 }))
})
afterAll(async () => {
  await Effect.runPromise(log.close)
  await redis.cleanup()
})

describe("projector restart with a large pending list", () => {
  it("starts, projects every entry and acks them all, though 2,500 entries were pending for its consumer", async () => {
    await appendFacts(log, "bulk", [registered("o1"), ...Array.from({ length: 2_499 }, (_, i) => received(1, 7, i + 1))])
    // the previous projector of the partition read them all and stopped before acking any
    await Effect.runPromise(log.ensureGroup(0, "projections", "start"))
    const delivered = await Effect.runPromise(log.readGroup({ partition: 0, group: "projections", consumer: "projector-0", count: 3_000 }))
    expect(delivered).toHaveLength(2_500)
    expect(await Effect.runPromise(log.pendingCount(0, "projections"))).toBe(2_500)

    const projector = makeProjector({ log, sql, partition: 0, blockMs: 0, reclaimIdleMs: 0 })
    let steps = 0
    for (;;) {
      const r = await Effect.runPromise(projector.step.pipe(Effect.timeout("20 seconds")))
      steps++
      if (r.caughtUp && r.projected === 0 && (await Effect.runPromise(log.pendingCount(0, "projections"))) === 0) break
      expect(steps).toBeLessThan(50)
    }
    const { rows } = await sql.query<{ n: number }>("SELECT count(*)::int AS n FROM messages WHERE bot_id = 'bulk'")
    expect(rows[0]!.n).toBe(2_499)
  }, 60_000)
})
