import { mkdtemp, readdir, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Either } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { echoHandler } from "../../src/actors/decider/updateHandler.js"
import { verifyAudit } from "../../src/audit/verify.js"
import { writeBackup } from "../../src/cli/backup/backup.js"
import { restoreBackup } from "../../src/cli/backup/restore.js"
import { formatEventLine } from "../../src/cli/eventText.pure.js"
import { foldState } from "../../src/cli/inspect.js"
import { replayEvents } from "../../src/cli/replay/replay.js"
import { migrate } from "../../src/db/migrator.js"
import { makePgSql } from "../../src/db/pgSql.js"
import type { SqlClient } from "../../src/db/sql.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makePostgresEventLog } from "../../src/events/postgresEventLog.js"
import { anchorKeyFrom } from "../../src/projections/auditChain.js"
import { FLEET_STREAM } from "../../src/projections/mapping/fleet.js"
import { rebuild } from "../../src/projections/rebuild.js"
import { forgetUser } from "../../src/privacy/forgetUser.js"
import type { ForgetUserDeps } from "../../src/privacy/forgetUser.js"
import { openUserKeys, withSealing } from "../../src/privacy/sealingLog.js"
import { createTestDatabase } from "../support/db.js"
import { BOT, recordConversation } from "../support/recordConversation.js"
import { projectAll, rowsHolding } from "./support.js"

const run = <A, E>(eff: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(eff)
const fleetKey = Buffer.alloc(32, 7)

describe("users forget (Postgres: log, projections, audit, backup)", () => {
  let sql: SqlClient
  let drop: () => Promise<void>
  let base: EventLogService
  let log: EventLogService
  let deps: ForgetUserDeps
  const turns = [
    { userId: 42, name: "Zelda", text: "my secret diary" },
    { userId: 7, name: "Bob", text: "bob likes tea" },
    { userId: 42, name: "Zelda", text: "more secret diary" }
  ]
  const dir = mkdtemp(join(tmpdir(), "bf-forget-"))

  beforeAll(async () => {
    const db = await createTestDatabase("forget_user")
    drop = db.drop
    sql = makePgSql(db.url)
    await migrate(sql)
    base = makePostgresEventLog({ sql, partitions: 4 })
    const { keys, cache } = openUserKeys(sql, fleetKey, { listen: false })
    log = withSealing(base, cache)
    deps = { log, sql, keys, cache, settle: 10 }
    const events = await recordConversation(turns)
    const lease = (await run(log.acquireLease(BOT, "t", 10_000)))!
    await run(log.append({ botId: BOT, expectedVersion: 0, fence: lease.fence, events }))
    // one event of Zelda's from before sealing existed: written in clear, straight to the log
    await run(base.append({
      botId: BOT, expectedVersion: events.length, fence: lease.fence,
      events: [{ data: { _tag: "MessageReceived", chatId: 42, chatType: "private", userId: 42, messageId: 77, text: "old clear words", at: "2026-11-01T00:00:00.000Z" }, occurredAt: "2026-11-01T00:00:00.000Z", correlationId: "old", actor: "user:42" }]
    }))
    await run(log.releaseLease(lease))
    await projectAll(log, sql)
    // an update of Zelda's a handler threw on, waiting in the inbox's dead letters
    await sql.query("INSERT INTO inbox_dead_letters (bot_id, entry_id, update, reason, at) VALUES ($1, '9', $2, 'boom', now())", [
      BOT,
      JSON.stringify({ update_id: 9, message: { message_id: 9, from: { id: 42, first_name: "Zelda" }, chat: { id: 42, type: "private" }, text: "secret diary page" } })
    ])
  }, 60_000)

  afterAll(async () => {
    deps.cache.close()
    await sql.close()
    await drop()
    await rm(await dir, { recursive: true, force: true })
  })

  it("projects the users' data while they are known, and replays identically", async () => {
    const { rows } = await sql.query<{ first_name: string }>("SELECT first_name FROM bot_users WHERE bot_id = $1 ORDER BY user_id", [BOT])
    expect(rows.map((r) => r.first_name)).toEqual(["Bob", "Zelda"])
    expect(Object.keys(await rowsHolding(sql, "secret diary"))).toContain("messages")
    const r = await replayEvents(BOT, await run(log.readStream(BOT)), () => echoHandler)
    expect(r).toMatchObject({ identical: true, inputsReplayed: 3, erasedInputs: 0 })
    // a rebuild from the (sealed) archive opens the fields as the projectors did: the same rows
    for (const projection of ["users", "messages"] as const) {
      const rebuilt = await run(rebuild({ sql, projection, swap: false, keyCache: deps.cache }))
      expect(rebuilt.identical).toBe(true)
    }
  })

  it("refuses an unknown bot, an unknown user and a malformed id, changing nothing", async () => {
    const refused = async (botId: string, userIdText: string) => {
      const r = await run(Effect.either(forgetUser(deps, { botId, userIdText, actor: "owner:o" })))
      return Either.isLeft(r) && r.left._tag === "ForgetRefused" ? r.left.reason : "accepted"
    }
    expect(await refused("nobody", "42")).toBe("UnknownBot")
    expect(await refused(BOT, "999")).toBe("UnknownUser")
    expect(await refused(BOT, "abc")).toBe("BadUserId")
    expect(await refused(BOT, "0")).toBe("BadUserId")
    const { rows } = await sql.query("SELECT 1 FROM user_keys WHERE forgotten_at IS NOT NULL")
    expect(rows).toHaveLength(0)
  })

  it("forgets a user: key destroyed, rows purged, [erased] in inspect/tail/replay, audit still verifies, UserForgotten recorded", async () => {
    const progress: Array<string> = []
    const report = await run(forgetUser({ ...deps, onProgress: (l) => progress.push(l) }, { botId: BOT, userIdText: "42", actor: "owner:o" }))
    expect(report).toMatchObject({ botId: BOT, userId: 42, alreadyForgotten: false, clearTextEvents: 1 })
    expect(report.recordedAt).toBeGreaterThan(0)
    expect(report.purged["bot_users"]).toBe(1)
    expect(report.purged["chats"]).toBe(1)
    expect(report.purged["inbox_dead_letters"]).toBe(1)
    expect(report.purged["messages"]).toBeGreaterThanOrEqual(4)
    expect(progress[0]).toBe("key destroyed")

    await projectAll(log, sql)
    // nothing of Zelda's is left anywhere in the database, in clear; Bob is still there
    expect(await rowsHolding(sql, "Zelda")).toEqual({})
    expect(await rowsHolding(sql, "secret diary")).toEqual({})
    expect(Object.keys(await rowsHolding(sql, "bob likes tea"))).toContain("messages")
    // the one event written before sealing stays readable: out of reach, and reported
    expect(Object.keys(await rowsHolding(sql, "old clear words"))).toEqual(expect.arrayContaining(["events"]))

    const events = await run(log.readStream(BOT))
    const tail = events.map(formatEventLine).join("\n")
    expect(tail).toContain("[erased]")
    expect(tail).not.toMatch(/Zelda|secret diary/)
    expect(JSON.stringify(foldState(BOT, events).state)).not.toMatch(/Zelda|secret diary/)

    // replay: Zelda's two inputs are folded as recorded, Bob's is decided again; the same every time
    const first = await replayEvents(BOT, events, () => echoHandler)
    expect(first).toMatchObject({ identical: true, inputsReplayed: 1, erasedInputs: 2 })
    expect(await replayEvents(BOT, await run(log.readStream(BOT)), () => echoHandler)).toEqual(first)

    const fleet = await run(log.readStream(FLEET_STREAM))
    expect(fleet.map((e) => e.data)).toEqual([{ _tag: "UserForgotten", botId: BOT, userId: 42, clearTextEvents: 1 }])
    const { rows: audited } = await sql.query<{ summary: unknown }>("SELECT summary FROM audit_log WHERE event_type = 'UserForgotten'")
    expect(audited).toHaveLength(1)
    const audit = await run(verifyAudit({ sql, anchorKey: anchorKeyFrom(fleetKey) }))
    expect(audit.ok).toBe(true)
  })

  it("is idempotent: a second run destroys nothing new, purges nothing, records nothing", async () => {
    const again = await run(forgetUser(deps, { botId: BOT, userIdText: "42", actor: "owner:o" }))
    expect(again.alreadyForgotten).toBe(true)
    expect(again.recordedAt).toBeNull()
    expect(Object.values(again.purged).every((n) => n === 0)).toBe(true)
    expect(await run(log.readStream(FLEET_STREAM))).toHaveLength(1)
  })

  it("a backup taken after the erasure holds no key and restores without the user's data", async () => {
    const folder = join(await dir, "backup")
    await run(writeBackup({ log, sql, dir: folder, now: () => new Date() }))
    const files = await readdir(folder)
    const text = (await Promise.all(files.map((f) => readFile(join(folder, f), "utf8")))).join("\n")
    expect(text).not.toMatch(/Zelda|secret diary|Bob|bob likes tea/)
    expect(text).toContain("sealed:v1:7:")
    expect(text).not.toContain("user_keys")

    // restored elsewhere with the key store copied apart (as docs/privacy.md says ops do): Bob
    // reads again, Zelda's key no longer exists anywhere
    const target = await createTestDatabase("forget_user_restore")
    const tsql = makePgSql(target.url)
    try {
      await migrate(tsql)
      const { rows: keys } = await sql.query<{ bot_id: string; user_id: string; sealed_key: string | null; forgotten_at: string | null; forgotten_by: string | null }>(
        "SELECT bot_id, user_id, sealed_key, forgotten_at::text, forgotten_by FROM user_keys"
      )
      for (const k of keys) {
        await tsql.query("INSERT INTO user_keys (bot_id, user_id, sealed_key, forgotten_at, forgotten_by) VALUES ($1, $2, $3, $4, $5)", [k.bot_id, k.user_id, k.sealed_key, k.forgotten_at, k.forgotten_by])
      }
      const { cache } = openUserKeys(tsql, fleetKey, { listen: false })
      const tlog = withSealing(makePostgresEventLog({ sql: tsql, partitions: 4 }), cache)
      await run(restoreBackup({ log: tlog, sql: tsql, dir: folder, nodeId: "restore-test" }))
      const restored = JSON.stringify((await run(tlog.readStream(BOT))).map((e) => e.data))
      expect(restored).toContain("bob likes tea")
      expect(restored).not.toMatch(/Zelda|secret diary/)
      expect(await rowsHolding(tsql, "Zelda")).toEqual({})
      cache.close()
    } finally {
      await tsql.close()
      await target.drop()
    }
  })
})
