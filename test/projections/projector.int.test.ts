import { Effect } from "effect"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { migrate } from "../../src/db/migrator.js"
import { makePgSql } from "../../src/db/pgSql.js"
import type { SqlClient } from "../../src/db/sql.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import { makeProjector } from "../../src/projections/projector.js"
import { createTestDatabase } from "../support/db.js"
import { appendFacts, dumpTables, received, registered, truncateProjections } from "./fixtures.js"

let sql: SqlClient
let drop: () => Promise<void>
beforeAll(async () => {
  const db = await createTestDatabase("projector")
  drop = db.drop
  sql = makePgSql(db.url, { max: 4 })
  await migrate(sql)
})
afterAll(async () => {
  await sql?.close()
  await drop?.()
})
beforeEach(() => truncateProjections(sql))

const drain = async (projector: ReturnType<typeof makeProjector>) => {
  for (let i = 0; i < 1000; i++) {
    const r = await Effect.runPromise(projector.step)
    if (r.caughtUp && r.projected === 0) return
  }
  throw new Error("projector never caught up")
}

describe("projector", () => {
  it("projects a bot's events into every table, with the owner on each row", async () => {
    const log = makeMemoryEventLog({ partitions: 1 })
    await appendFacts(log, "bot-a", [
      registered("owner-1", "Echo"),
      { _tag: "BotStarted", nodeId: "n1", fence: 1 },
      { _tag: "UserSeen", userId: 7, firstName: "Ann", at: "2026-01-01T09:59:00.000Z" },
      received(100, 7, 1),
      { _tag: "ReplySent", chatId: 100, messageId: 2, text: "hello", inReplyTo: 1, at: "2026-01-01T10:00:01.000Z" },
      { _tag: "BotConfigChanged", patch: { greeting: null, lang: "en" } }
    ])
    const projector = makeProjector({ log, sql, partition: 0, blockMs: 0 })
    await drain(projector)
    const bot = (await sql.query("SELECT owner_id, name, state, version, config FROM bots")).rows
    expect(bot).toEqual([{ owner_id: "owner-1", name: "Echo", state: "running", version: 6, config: { lang: "en" } }])
    const msgs = (await sql.query("SELECT direction, delivery_state, text, owner_id FROM messages ORDER BY version")).rows
    expect(msgs).toEqual([
      { direction: "in", delivery_state: "received", text: "hello", owner_id: "owner-1" },
      { direction: "out", delivery_state: "sent", text: "hello", owner_id: "owner-1" }
    ])
    const stats = (await sql.query("SELECT day::text, messages_in, messages_out, active_users, new_users FROM daily_stats")).rows
    expect(stats).toEqual([{ day: "2026-01-01", messages_in: 1, messages_out: 1, active_users: 1, new_users: 1 }])
    const user = (await sql.query("SELECT first_name, messages_in FROM bot_users")).rows
    expect(user).toEqual([{ first_name: "Ann", messages_in: 1 }])
    const chat = (await sql.query("SELECT chat_type, messages_in, messages_out FROM chats")).rows
    expect(chat).toEqual([{ chat_type: "private", messages_in: 1, messages_out: 1 }])
    const dump = await dumpTables(sql)
    expect(dump["events_archive"]).toHaveLength(6)
    expect(dump["audit_log"]!.map((r) => r.includes("BotRegistered") || r.includes("BotStarted") || r.includes("BotConfigChanged"))).toEqual([true, true, true])
    // no secret reaches the audit log or the archive's audit summary
    expect(dump["audit_log"]!.join("\n")).not.toContain("secret-ciphertext")
    expect(await Effect.runPromise(log.pendingCount(0, "projections"))).toBe(0)
  })
})
