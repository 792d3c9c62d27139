import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import { Effect } from "effect"
import { beforeAll, beforeEach, describe, expect, it } from "vitest"
import type { SqlClient } from "../../src/db/sql.js"
import { inRole } from "../../src/db/roles.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import { importEvents } from "../../src/cli/import/plan.pure.js"
import { parseLegacyFile } from "../../src/cli/import/legacyFile.pure.js"
import type { DomainEvent } from "../../src/events/schema/catalogue.js"
import { makeProjector } from "../../src/projections/projector.js"
import { useMigratedDatabase } from "../support/db.js"
import { appendFacts, dumpTables, registered, truncateProjections } from "./fixtures.js"

const database = useMigratedDatabase("legacyproj")
let sql: SqlClient
beforeAll(() => {
  sql = database()
})
beforeEach(() => truncateProjections(sql))

const sha = (t: string) => createHash("sha256").update(t).digest("hex")
const AT = "2026-12-01T10:00:00.000Z"
const imported = (fixture: string): DomainEvent[] => {
  const r = parseLegacyFile(fixture, readFileSync(new URL(`../fixtures/legacy/${fixture}`, import.meta.url), "utf8"), sha)
  if (!r.ok) throw new Error(JSON.stringify(r.problems))
  return importEvents(r.parsed.records, { runId: "run", occurredAt: AT }).map((e) => e.data as DomainEvent)
}

const drain = async (projector: ReturnType<typeof makeProjector>) => {
  for (let i = 0; i < 1000; i++) {
    const r = await Effect.runPromise(projector.step)
    if (r.caughtUp && r.projected === 0) return
  }
  throw new Error("projector never caught up")
}

const facts: DomainEvent[] = [
  registered("owner-L", "legacy"),
  ...imported("sessions.json"),
  ...imported("generic.json"),
  // the bot goes on with an imported session, then deletes another, then patches a new one twice
  { _tag: "SessionChanged", key: "42:-1001234567890", patch: { counter: 8, __scenes: null } },
  { _tag: "SessionChanged", key: "1001:77", patch: null },
  { _tag: "SessionChanged", key: "9:9", patch: { a: { b: 1 } } },
  { _tag: "SessionChanged", key: "9:9", patch: { a: null, c: 2 } }
]

describe("projections of imported legacy records", () => {
  it("bot_users, chats, bot_sessions and imported_records show them, whatever the batch size", async () => {
    const log = makeMemoryEventLog({ partitions: 1 })
    await appendFacts(log, "bot-L", facts)
    await drain(makeProjector({ log, sql, partition: 0, blockMs: 0, batchSize: 3 }))
    const small = await dumpTables(sql)
    await truncateProjections(sql)
    await drain(makeProjector({ log, sql, partition: 0, group: "big", blockMs: 0, batchSize: 1000 }))
    expect(await dumpTables(sql)).toEqual(small)

    const users = (await sql.query("SELECT user_id::int AS id, first_name, language_code FROM bot_users ORDER BY user_id")).rows
    expect(users).toEqual([
      { id: 42, first_name: "Zoë", language_code: "sv" },
      { id: 1001, first_name: "Олена", language_code: null }
    ])
    const chats = (await sql.query("SELECT chat_id::text AS id, chat_type FROM chats ORDER BY chat_id")).rows
    expect(chats).toEqual([
      { id: "-1001234567890", chat_type: "supergroup" },
      { id: "42", chat_type: "private" },
      { id: "77", chat_type: "unknown" }
    ])
    const sessions = (await sql.query<{ session_key: string; user_id: string | null; data: Record<string, unknown> }>(
      "SELECT session_key, user_id::text, data FROM bot_sessions ORDER BY session_key"
    )).rows
    expect(sessions.map((s) => s.session_key)).toEqual(["-8243528495438451211:42", "42:-1001234567890", "42:42", "9:9", "custom-key-from-getSessionKey"])
    const group = sessions.find((s) => s.session_key === "42:-1001234567890")!
    expect(group.user_id).toBe("42")
    expect(group.data["counter"]).toBe(8)
    expect(group.data["__scenes"]).toBeUndefined()
    expect(group.data["name"]).toBe("Zoë 🐱 — \"quoted\" \\ back\\slash\ttab\nnewline")
    expect(sessions.find((s) => s.session_key === "9:9")!.data).toEqual({ c: 2 })

    const records = (await sql.query<{ collection: string; n: string }>("SELECT collection, count(*)::text AS n FROM imported_records GROUP BY 1 ORDER BY 1")).rows
    expect(records).toEqual([
      { collection: "chats", n: "2" }, { collection: "data.archived", n: "1" }, { collection: "data.counters", n: "2" },
      { collection: "data.schemaVersion", n: "1" }, { collection: "data.todos", n: "2" }, { collection: "messages", n: "3" },
      { collection: "sessions", n: "5" }, { collection: "settings", n: "5" }, { collection: "users", n: "3" }
    ])
    const motd = (await sql.query("SELECT record, source FROM imported_records WHERE collection = 'settings' AND record_key = 'motd'")).rows
    expect(motd).toEqual([{ record: null, source: "generic.json#$.settings.motd" }])
  })

  it("an owner sees only its own sessions and imported records (RLS)", async () => {
    const log = makeMemoryEventLog({ partitions: 1 })
    await appendFacts(log, "bot-L", facts)
    await appendFacts(log, "bot-M", [registered("owner-M", "other"), { _tag: "SessionChanged", key: "5:5", patch: { x: 1 } }])
    await drain(makeProjector({ log, sql, partition: 0, blockMs: 0 }))
    const count = (owner: string, table: string) =>
      inRole(sql, { role: "api", ownerId: owner }, async (tx) => (await tx.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`)).rows[0]!.n)
    expect(await count("owner-M", "bot_sessions")).toBe("1")
    expect(await count("owner-M", "imported_records")).toBe("0")
    expect(await count("owner-L", "imported_records")).toBe("24")
    expect(await count("owner-nobody", "bot_sessions")).toBe("0")
  })
})
