import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { beforeAll, beforeEach, describe, expect, it } from "vitest"
import { importLegacy } from "../../../src/cli/import/importer.js"
import { verifyLegacyImport } from "../../../src/cli/import/verify.js"
import { Sql } from "../../../src/db/sql.js"
import type { SqlClient } from "../../../src/db/sql.js"
import { EventLog } from "../../../src/events/eventLog.js"
import type { EventLogService } from "../../../src/events/eventLog.js"
import { makeMemoryEventLog } from "../../../src/events/memoryEventLog.js"
import { makeProjector } from "../../../src/projections/projector.js"
import { useMigratedDatabase } from "../../support/db.js"
import { appendNewBot, legacyBotRegistered } from "../../support/events.js"
import { appendFacts, truncateProjections } from "../../projections/fixtures.js"

/*
 * `botfleet import --verify`: the files against the bot's folded state and the projections, on a
 * memory log projected into a real Postgres database.
 */

const fixture = (name: string) => fileURLToPath(new URL(`../../fixtures/legacy/${name}`, import.meta.url))
const files = [fixture("sessions.json"), fixture("generic.json")]
const database = useMigratedDatabase("importverify")
let sql: SqlClient
beforeAll(() => {
  sql = database()
})
beforeEach(() => truncateProjections(sql))

const project = async (log: EventLogService) => {
  const p = makeProjector({ log, sql, partition: 0, blockMs: 0 })
  for (let i = 0; i < 100; i++) {
    const r = await Effect.runPromise(p.step)
    if (r.caughtUp && r.projected === 0) return
  }
}

const setup = async () => {
  const log = makeMemoryEventLog({ partitions: 1 })
  await appendNewBot(log, "old-bot", [{ ...legacyBotRegistered, data: { _tag: "BotRegistered", ownerId: "owner-V", name: "old", kind: "builtin", mode: "sandbox" } }])
  await Effect.runPromise(importLegacy({ botId: "old-bot", files }).pipe(Effect.provideService(EventLog, log)))
  const verify = () =>
    Effect.runPromise(verifyLegacyImport({ botId: "old-bot", files }).pipe(Effect.provideService(EventLog, log), Effect.provideService(Sql, sql)))
  return { log, verify }
}

describe("import --verify", () => {
  it("matches every record in the state and the projections; the bot's later session changes are its own", async () => {
    const { log, verify } = await setup()
    const before = await verify()
    // nothing projected yet: every record is missing from the projections, none from the state
    expect(before.ok).toBe(false)
    expect(before.differences.every((d) => d.place !== "state")).toBe(true)

    await project(log)
    const r = await verify()
    expect(r.differences).toEqual([])
    expect(r.ok).toBe(true)
    expect(r.collections.find((c) => c.collection === "sessions")).toEqual({
      collection: "sessions", inFiles: 5, inState: 5, inProjections: 5, matched: 5, different: 0
    })
    expect(r.collections.reduce((n, c) => n + c.matched, 0)).toBe(24)

    // the bot runs on and changes an imported session: not a difference
    await appendFacts(log, "old-bot", [{ _tag: "SessionChanged", key: "42:-1001234567890", patch: { counter: 9 } }])
    await project(log)
    expect((await verify()).ok).toBe(true)
  })

  it("names each record whose projection differs or is missing, with the place", async () => {
    const { log, verify } = await setup()
    await project(log)
    await sql.exec(`UPDATE imported_records SET record = '{"id": 1, "text": "tampered"}' WHERE collection = 'data.todos' AND record_key = '0'`)
    await sql.exec(`DELETE FROM bot_users WHERE user_id = 1001`)
    await sql.exec(`UPDATE bot_sessions SET data = '{}' WHERE session_key = '42:42'`)
    const r = await verify()
    expect(r.ok).toBe(false)
    expect(r.differences.map((d) => `${d.collection} ${d.key} ${d.place} ${d.problem}`).sort()).toEqual([
      "data.todos 0 imported_records content differs",
      "sessions 42:42 bot_sessions content differs",
      "sessions 77:1001 bot_users missing",
      "users 1001 bot_users missing"
    ])
  })
})
