import fc from "fast-check"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { echoHandler } from "../../src/actors/decider/updateHandler.js"
import { foldState } from "../../src/cli/inspect.js"
import { replayEvents } from "../../src/cli/replay/replay.js"
import { migrate } from "../../src/db/migrator.js"
import { makePgliteSql } from "../../src/db/pgliteSql.js"
import type { SqlClient } from "../../src/db/sql.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makePostgresEventLog } from "../../src/events/postgresEventLog.js"
import type { KeyCache } from "../../src/privacy/keyCache.js"
import { openUserKeys, withSealing } from "../../src/privacy/sealingLog.js"
import type { UserKeys } from "../../src/privacy/userKeys.js"
import { recordConversation } from "../support/recordConversation.js"

const run = <A, E>(eff: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(eff)

/*
 * Deterministic replay across erasures, on the embedded store (PGlite holds both the log and the
 * keys): for any conversation among a few users and any set of them forgotten, replaying the
 * stream decides again exactly the inputs of the users still known, folds the forgotten users'
 * inputs as recorded, finds no divergence, and gives the same report and state every time; and
 * no word a forgotten user wrote can be read back.
 */
describe("replay stays deterministic whatever users are forgotten (PGlite)", () => {
  let sql: SqlClient
  let log: EventLogService
  let keys: UserKeys
  let cache: KeyCache
  let bots = 0
  beforeAll(async () => {
    sql = await makePgliteSql()
    await migrate(sql)
    ;({ keys, cache } = openUserKeys(sql, Buffer.alloc(32, 3), { listen: false }))
    log = withSealing(makePostgresEventLog({ sql, partitions: 2 }), cache)
  })
  afterAll(async () => {
    cache.close()
    await sql.close()
  })

  it("holds for random conversations and random erasures", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ userId: fc.integer({ min: 1, max: 4 }), word: fc.string({ minLength: 1, maxLength: 12 }) }), { minLength: 1, maxLength: 8 }),
        fc.subarray([1, 2, 3, 4]),
        async (said, forgotten) => {
          const botId = `replay-${++bots}`
          // each text carries a marker no other text contains, so "can it be read back" is exact
          const turns = said.map((t, n) => ({ userId: t.userId, name: `Name${t.userId}x`, text: `m${n}q ${t.word}` }))
          const events = await recordConversation(turns)
          const lease = (await run(log.acquireLease(botId, "t", 10_000)))!
          await run(log.append({ botId, expectedVersion: 0, fence: lease.fence, events }))
          await run(log.releaseLease(lease))
          for (const u of forgotten) {
            await keys.forget(botId, u, "owner:o")
            cache.invalidate(botId, u)
          }
          const read = await run(log.readStream(botId))
          const report = await replayEvents(botId, read, () => echoHandler)
          const erasedTurns = turns.filter((t) => forgotten.includes(t.userId)).length
          expect(report.identical).toBe(true)
          expect(report.erasedInputs).toBe(erasedTurns)
          expect(report.inputsReplayed).toBe(turns.length - erasedTurns)
          const again = await run(log.readStream(botId))
          expect(await replayEvents(botId, again, () => echoHandler)).toEqual(report)
          expect(foldState(botId, again)).toEqual(foldState(botId, read))
          const text = JSON.stringify(read.map((e) => e.data))
          turns.forEach((t, n) => {
            const readable = text.includes(`m${n}q `)
            expect(readable).toBe(!forgotten.includes(t.userId))
          })
          for (const u of forgotten) expect(text).not.toContain(`Name${u}x`)
        }
      ),
      { numRuns: 15 }
    )
  }, 120_000)
})
