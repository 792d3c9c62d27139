import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { echoHandler } from "../../src/actors/decider/updateHandler.js"
import { formatEventLine } from "../../src/cli/eventText.pure.js"
import { importLegacy } from "../../src/cli/import/importer.js"
import { verifyLegacyImport } from "../../src/cli/import/verify.js"
import { foldState } from "../../src/cli/inspect.js"
import { replayEvents } from "../../src/cli/replay/replay.js"
import { migrate } from "../../src/db/migrator.js"
import { makePgSql } from "../../src/db/pgSql.js"
import { Sql } from "../../src/db/sql.js"
import type { SqlClient } from "../../src/db/sql.js"
import { EventLog } from "../../src/events/eventLog.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makePostgresEventLog } from "../../src/events/postgresEventLog.js"
import { projectAll as projectLog, rowsHolding } from "./support.js"
import { forgetUser } from "../../src/privacy/forgetUser.js"
import type { ForgetUserDeps } from "../../src/privacy/forgetUser.js"
import { openUserKeys, withSealing } from "../../src/privacy/sealingLog.js"
import { createTestDatabase } from "../support/db.js"
import { appendNewBot, legacyBotRegistered } from "../support/events.js"

/*
 * Legacy records brought over by `botfleet import` are sealed like the bot's own events
 * (docs/privacy.md): after `users forget`, no table, no `tail` line and no folded state holds a
 * legacy user's name, the import still verifies for everyone while they are known, and replay
 * stays deterministic.
 */

const run = <A, E>(eff: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(eff)
const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/legacy/${name}`, import.meta.url))
const files = [fixture("sessions.json"), fixture("generic.json")]
const BOT = "old-bot"

describe("users forget reaches imported legacy records (Postgres)", () => {
  let sql: SqlClient
  let drop: () => Promise<void>
  let base: EventLogService
  let log: EventLogService
  let deps: ForgetUserDeps

  const projectAll = () => projectLog(log, sql)

  beforeAll(async () => {
    const db = await createTestDatabase("forget_legacy")
    drop = db.drop
    sql = makePgSql(db.url)
    await migrate(sql)
    base = makePostgresEventLog({ sql, partitions: 2 })
    const { keys, cache } = openUserKeys(sql, Buffer.alloc(32, 3), { listen: false })
    log = withSealing(base, cache)
    deps = { log, sql, keys, cache, settle: 10 }
    await appendNewBot(log, BOT, [legacyBotRegistered])
    const report = await run(importLegacy({ botId: BOT, files }).pipe(Effect.provideService(EventLog, log)))
    expect(report.reconciliation?.ok).toBe(true)
    await projectAll()
  }, 60_000)

  afterAll(async () => {
    deps.cache.close()
    await sql.close()
    await drop()
  })

  it("stores the legacy users' names sealed, reads them clear, and the import verifies", async () => {
    const stored = JSON.stringify(await run(base.readStream(BOT)))
    expect(stored).not.toMatch(/Zoë|Олена|Привіт|hello 👋/)
    expect(stored).toContain("sealed:v1:42:")
    // what is no one user's stays as the file held it
    expect(stored).toContain("Café ☕ lovers")
    const opened = JSON.stringify(await run(log.readStream(BOT)))
    expect(opened).toMatch(/Zoë/)
    const { rows } = await sql.query<{ user_id: string; first_name: string }>("SELECT user_id, first_name FROM bot_users WHERE bot_id = $1 ORDER BY user_id", [BOT])
    // the bot in the users collection is no user of the bot
    expect(rows.map((r) => r.first_name)).toEqual(["Zoë", "Олена"])
    const verified = await run(verifyLegacyImport({ botId: BOT, files }).pipe(Effect.provideService(EventLog, log), Effect.provideService(Sql, sql)))
    expect(verified.differences).toEqual([])
    expect(verified.ok).toBe(true)
  })

  it("after users forget, no table, tail line or folded state holds the legacy user's data; replay stays deterministic", async () => {
    const report = await run(forgetUser(deps, { botId: BOT, userIdText: "42", actor: "owner:o" }))
    expect(report).toMatchObject({ alreadyForgotten: false, clearTextEvents: 0 })
    // the user, their three sessions, their message and their private chat's record
    expect(report.purged["imported_records"]).toBeGreaterThanOrEqual(5)
    await projectAll()
    expect(await rowsHolding(sql, "Zoë")).toEqual({})
    expect(await rowsHolding(sql, "hello 👋")).toEqual({})
    // their sessions, whatever their strings (the session keyed by a callback's chat_instance too)
    expect(await rowsHolding(sql, '"cats"')).toEqual({})
    expect(await rowsHolding(sql, '"cancel"')).toEqual({})
    // another legacy user is untouched
    expect(Object.keys(await rowsHolding(sql, "Олена"))).toEqual(expect.arrayContaining(["bot_users", "imported_records"]))

    const events = await run(log.readStream(BOT))
    const tail = events.map(formatEventLine).join("\n")
    expect(tail).not.toMatch(/Zoë/)
    const inspected = JSON.stringify(foldState(BOT, events).state)
    expect(inspected).not.toMatch(/Zoë|hello 👋|cats/)
    expect(inspected).toContain("[erased]")
    expect(inspected).toContain("Олена")

    // importing the same files again brings nothing back: the records are in the log already (their
    // checksums say so) and nothing is written; the read-back names the erased ones as differing
    const again = await run(importLegacy({ botId: BOT, files }).pipe(Effect.provideService(EventLog, log)))
    expect(again.appended).toBeUndefined()
    expect(again.reconciliation?.differences.map((d) => `${d.collection} ${d.key}`).sort()).toEqual([
      "messages -1001234567890:1", "sessions -1001234567890:42", "sessions -8243528495438451211:42", "sessions 42:42", "users 42"
    ])
    expect(await rowsHolding(sql, "Zoë")).toEqual({})
    const first = await replayEvents(BOT, events, () => echoHandler)
    expect(first.identical).toBe(true)
    expect(await replayEvents(BOT, await run(log.readStream(BOT)), () => echoHandler)).toEqual(first)
  })
})
