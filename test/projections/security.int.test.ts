import { randomBytes } from "node:crypto"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { migrate } from "../../src/db/migrator.js"
import { makePgliteSql } from "../../src/db/pgliteSql.js"
import { makePgSql } from "../../src/db/pgSql.js"
import type { SqlClient, SqlTx } from "../../src/db/sql.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import { PROJECTION_TABLES } from "../../src/projections/mapping/rows.js"
import { makeProjector } from "../../src/projections/projector.js"
import { createTestDatabase } from "../support/db.js"
import { appendFacts, received, registered } from "./fixtures.js"

const OWNER_TABLES = ["owners", ...Object.values(PROJECTION_TABLES).flat().filter((t) => t !== "owners")]
const VIEWS = ["fleet_overview", "bot_daily_activity", "top_chats"]

/** Runs `fn` as `role` with `settings`, in a transaction that is always rolled back. */
const as = async <A>(sql: SqlClient, role: string, settings: Record<string, string>, fn: (tx: SqlTx) => Promise<A>): Promise<A> => {
  const rollback = new Error("rollback")
  let out: A | undefined
  await sql
    .transaction(async (tx) => {
      await tx.query(`SET LOCAL ROLE ${role}`)
      for (const [k, v] of Object.entries(settings)) await tx.query("SELECT set_config($1, $2, true)", [k, v])
      out = await fn(tx)
      throw rollback
    })
    .catch((e) => {
      if (e !== rollback) throw e
    })
  return out as A
}

const fails = async (sql: SqlClient, role: string, settings: Record<string, string>, text: string): Promise<string> => {
  try {
    await as(sql, role, settings, (tx) => tx.query(text))
  } catch (e) {
    return (e as Error).message
  }
  throw new Error(`expected to fail: ${text}`)
}

const populate = async (sql: SqlClient) => {
  const log = makeMemoryEventLog({ partitions: 1 })
  for (const [bot, owner] of [["bot-a", "owner-A"], ["bot-b", "owner-B"]] as const) {
    await appendFacts(log, bot, [
      registered(owner, bot),
      { _tag: "UserSeen", userId: 1, firstName: "U", at: "2026-01-01T09:00:00Z" },
      received(10, 1, 1),
      { _tag: "BotStarted", nodeId: "n", fence: 1 }
    ])
  }
  const p = makeProjector({ log, sql, partition: 0, blockMs: 0 })
  for (let i = 0; i < 3; i++) await Effect.runPromise(p.step)
}

const securitySuite = (name: string, open: () => Promise<{ sql: SqlClient; close: () => Promise<void> }>) =>
  describe(`row-level security on ${name}`, () => {
    let sql: SqlClient
    let close: () => Promise<void>
    const writer = `bf_test_writer_${randomBytes(4).toString("hex")}`
    beforeAll(async () => {
      ;({ sql, close } = await open())
      await migrate(sql)
      await populate(sql)
      // a member of the api role that was (wrongly) granted INSERT: the policy still binds it
      await sql.exec(`CREATE ROLE ${writer} NOLOGIN IN ROLE botfleet_api; GRANT INSERT, SELECT ON messages TO ${writer}`)
    })
    afterAll(async () => {
      // roles are cluster-wide: drop it (and its grants) before the database goes
      await sql?.exec(`DROP OWNED BY ${writer}; DROP ROLE ${writer}`)
      await close?.()
    })

    it("an insert for another owner is refused by the policy, one for the set owner is accepted", async () => {
      const row = (owner: string, version: number) =>
        `INSERT INTO messages (bot_id, version, owner_id, direction, chat_id, delivery_state, at) VALUES ('bot-x', ${version}, '${owner}', 'in', 1, 'received', now())`
      expect(await fails(sql, writer, { "app.owner_id": "owner-A" }, row("owner-B", 1))).toMatch(/row-level security/)
      expect(await fails(sql, writer, {}, row("owner-A", 2))).toMatch(/row-level security/)
      const n = await as(sql, writer, { "app.owner_id": "owner-A" }, async (tx) => (await tx.query(row("owner-A", 3))).rowCount)
      expect(n).toBe(1)
    })

    it("as the api role with owner A set, every table and view shows A's rows and none of B's", async () => {
      for (const t of [...OWNER_TABLES, ...VIEWS]) {
        const owners = await as(sql, "botfleet_api", { "app.owner_id": "owner-A" }, async (tx) =>
          (await tx.query<{ owner_id: string }>(`SELECT DISTINCT owner_id FROM ${t}`)).rows.map((r) => r.owner_id))
        expect({ t, owners }).toEqual({ t, owners: ["owner-A"] })
      }
      // the superuser (what the projector wrote) does see both
      const all = await sql.query<{ n: string }>("SELECT count(DISTINCT owner_id) AS n FROM messages")
      expect(all.rows[0]!.n).toBe("2")
    })

    it("without an owner set, nothing is visible", async () => {
      for (const t of [...OWNER_TABLES, ...VIEWS]) {
        const n = await as(sql, "botfleet_api", {}, async (tx) => (await tx.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`)).rows[0]!.n)
        expect({ t, n }).toEqual({ t, n: "0" })
      }
    })

    it("the api role cannot write, and a direct partition query is refused", async () => {
      const insertB = "INSERT INTO messages (bot_id, version, owner_id, direction, chat_id, delivery_state, at) VALUES ('bot-b', 99, 'owner-B', 'in', 1, 'received', now())"
      expect(await fails(sql, "botfleet_api", { "app.owner_id": "owner-A" }, insertB)).toMatch(/permission denied/)
      for (const t of OWNER_TABLES.filter((t) => t !== "owners")) {
        expect(await fails(sql, "botfleet_api", { "app.owner_id": "owner-A" }, `SELECT * FROM ${t}_p00`)).toMatch(/permission denied/)
      }
    })

    it("the auditor reads the audit log of its owners only, and nothing else", async () => {
      const owners = await as(sql, "botfleet_auditor", { "app.owner_ids": "owner-B" }, async (tx) =>
        (await tx.query<{ owner_id: string }>("SELECT DISTINCT owner_id FROM audit_log")).rows.map((r) => r.owner_id))
      expect(owners).toEqual(["owner-B"])
      expect(await fails(sql, "botfleet_auditor", { "app.owner_ids": "owner-B" }, "SELECT * FROM messages")).toMatch(/permission denied/)
    })

    it("the projector role writes rows of every owner", async () => {
      const n = await as(sql, "botfleet_projector", {}, async (tx) => {
        await tx.query("UPDATE bots SET config = bf_merge_patch(config, '{\"x\": 1}'::jsonb)")
        await tx.query("UPDATE projection_checkpoints SET updated_at = now()")
        return (await tx.query<{ n: string }>("SELECT count(DISTINCT owner_id) AS n FROM bots WHERE config ? 'x'")).rows[0]!.n
      })
      expect(n).toBe("2")
    })
  })

securitySuite("PostgreSQL", async () => {
  const db = await createTestDatabase("projection_security")
  const sql = makePgSql(db.url, { max: 2 })
  return { sql, close: async () => { await sql.close(); await db.drop() } }
})

securitySuite("PGlite", async () => {
  const sql = await makePgliteSql()
  return { sql, close: () => sql.close() }
})
