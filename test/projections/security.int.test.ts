import { randomBytes } from "node:crypto"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { runVerification } from "../../src/audit/periodic.js"
import { migrate } from "../../src/db/migrator.js"
import { makePgliteSql } from "../../src/db/pgliteSql.js"
import { makePgSql } from "../../src/db/pgSql.js"
import { inRole } from "../../src/db/roles.js"
import type { SqlClient, SqlTx } from "../../src/db/sql.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import { PROJECTION_TABLES } from "../../src/projections/mapping/rows.js"
import { makeProjector } from "../../src/projections/projector.js"
import { createTestDatabase } from "../support/db.js"
import { appendFacts, received, registered } from "./fixtures.js"

/*
 * The row-level security probe suite: every projection table and view, probed from sessions of
 * the api and auditor roles with every kind of owner setting, including both leak classes found
 * before (issue 15): a session with no owner ('' after set_config(..., true) on a pooled
 * connection, or never set) seeing owner ''s rows, and an auditor's owner list split on commas
 * (the auditor of "ownerC,ownerB" reading ownerB's audit log). The database holds rows of such
 * owner ids (planted with the CHECK constraints dropped, as data from before migration 0040 would
 * be): the policies must hold even then. Same probes on PostgreSQL and on PGlite.
 */

const OWNER_TABLES = ["owners", ...Object.values(PROJECTION_TABLES).flat().filter((t) => t !== "owners")]
const VIEWS = ["fleet_overview", "bot_daily_activity", "top_chats"]
const AUDITOR_TABLES = ["audit_log", "events_archive", "audit_anchors"]
/** Not owner data for the api role: refused outright. */
const API_REFUSED = ["audit_anchors", "audit_verifications", "archive_divergences"]
const EMPTY = ""
const COMMA = "ownerC,ownerB"

type Settings = Readonly<Record<string, string>>

/** Runs `fn` as `role` with `settings`, in a transaction that is always rolled back. */
const as = async <A>(sql: SqlClient, role: string, settings: Settings, fn: (tx: SqlTx) => Promise<A>): Promise<A> => {
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

const fails = async (sql: SqlClient, role: string, settings: Settings, text: string): Promise<string> => {
  try {
    await as(sql, role, settings, (tx) => tx.query(text))
  } catch (e) {
    return (e as Error).message
  }
  throw new Error(`expected to fail: ${text}`)
}

const populate = async (sql: SqlClient) => {
  const log = makeMemoryEventLog({ partitions: 1 })
  for (const [bot, owner] of [["bot-a", "owner-A"], ["bot-b", "owner-B"], ["bot-c", "ownerC"]] as const) {
    await appendFacts(log, bot, [
      registered(owner, bot),
      { _tag: "UserSeen", userId: 1, firstName: "U", at: "2026-01-01T09:00:00Z" },
      received(10, 1, 1),
      { _tag: "BotStarted", nodeId: "n", fence: 1 },
      { _tag: "ReplySent", chatId: 10, messageId: 2, inReplyTo: 1, text: "hi", at: "2026-01-01T10:00:01.000Z" },
      { _tag: "BotConfigChanged", patch: { greeting: "hello" } },
      { _tag: "SessionChanged", key: "1:10", patch: { step: 1 } },
      { _tag: "LegacyRecordImported", importId: "i", collection: "data.todos", key: "0", record: { t: 1 }, source: "f#$.todos[0]", checksum: "c" }
    ])
  }
  const p = makeProjector({ log, sql, partition: 0, blockMs: 0 })
  for (let i = 0; i < 3; i++) await Effect.runPromise(p.step)
  // anchors of the three owners, so the auditor's anchor table has rows of several owners
  await Effect.runPromise(runVerification({ sql, anchorKey: new Uint8Array(32), nodeId: "test", anchor: true, record: true }))
}

/**
 * Rows of owner '' and of owner "ownerC,ownerB" in every table (copies of owner-B's rows under
 * other bot ids), with the owner id constraints dropped: what a database from before the owner id
 * checks could hold.
 */
const plantLegacyOwners = async (sql: SqlClient) => {
  for (const t of OWNER_TABLES) await sql.exec(`ALTER TABLE ${t} DROP CONSTRAINT ${t}_owner_id_valid`)
  for (const [owner, bot] of [[EMPTY, "bot-e"], [COMMA, "bot-x"]] as const) {
    for (const t of OWNER_TABLES) {
      await sql.query(
        `INSERT INTO ${t} SELECT (jsonb_populate_record(NULL::${t}, to_jsonb(r) || jsonb_build_object('owner_id', $1::text, 'bot_id', $2::text))).*
           FROM ${t} r WHERE owner_id = 'owner-B'`,
        [owner, bot]
      )
    }
  }
}

interface Tally {
  probes: number
  leakedRows: number
  leaks: Array<string>
}

const securitySuite = (name: string, open: () => Promise<{ sql: SqlClient; fresh: (() => SqlClient) | null; close: () => Promise<void> }>) =>
  describe(`row-level security on ${name}`, () => {
    let sql: SqlClient
    let fresh: (() => SqlClient) | null
    let close: () => Promise<void>
    const tally: Tally = { probes: 0, leakedRows: 0, leaks: [] }
    const writer = `bf_test_writer_${randomBytes(4).toString("hex")}`

    /** One probe: what `relation` shows the session, by owner; rows of owners not in `allowed` are leaks. */
    const probe = async (client: SqlClient, role: string, settings: Settings, relation: string, allowed: ReadonlyArray<string>, label: string) => {
      const seen = await as(client, role, settings, async (tx) =>
        (await tx.query<{ owner_id: string; n: string }>(`SELECT owner_id, count(*) AS n FROM ${relation} GROUP BY owner_id`)).rows)
      tally.probes++
      for (const r of seen) {
        if (!allowed.includes(r.owner_id)) {
          tally.leakedRows += Number(r.n)
          tally.leaks.push(`${label}: ${relation} showed ${r.n} rows of owner ${JSON.stringify(r.owner_id)}`)
        }
      }
      return seen.map((r) => r.owner_id).sort()
    }
    /** A probe the database must refuse (permission, malformed owner list): refused = nothing leaked. */
    const refused = async (client: SqlClient, role: string, settings: Settings, text: string, why: RegExp) => {
      tally.probes++
      expect(await fails(client, role, settings, text)).toMatch(why)
    }

    beforeAll(async () => {
      ;({ sql, fresh, close } = await open())
      await migrate(sql)
      await populate(sql)
      await plantLegacyOwners(sql)
      // a member of the api role that was (wrongly) granted INSERT: the policy still binds it
      await sql.exec(`CREATE ROLE ${writer} NOLOGIN IN ROLE botfleet_api; GRANT INSERT, SELECT ON messages TO ${writer}`)
    })
    afterAll(async () => {
      // roles are cluster-wide: drop it (and its grants) before the database goes
      await sql?.exec(`DROP OWNED BY ${writer}; DROP ROLE ${writer}`)
      await close?.()
      console.log(`RLS probes on ${name}: ${tally.probes} probes, ${tally.leakedRows} rows leaked`)
    })

    it("the planted data holds rows of owner '' and of owner \"ownerC,ownerB\" in every table and view", async () => {
      for (const t of [...OWNER_TABLES, ...VIEWS]) {
        const owners = (await sql.query<{ owner_id: string }>(`SELECT DISTINCT owner_id FROM ${t} ORDER BY 1`)).rows.map((r) => r.owner_id)
        expect({ t, owners }).toEqual({ t, owners: [EMPTY, "owner-A", "owner-B", COMMA, "ownerC"].sort() })
      }
    })

    it("a session with no owner sees nothing: set to '' in the transaction, or left '' by an earlier transaction's set_config", async () => {
      for (const t of [...OWNER_TABLES, ...VIEWS]) {
        expect(await probe(sql, "botfleet_api", { "app.owner_id": EMPTY }, t, [], "explicit ''")).toEqual([])
      }
      // the pooled-connection case: an earlier transaction set the owner with set_config(..., true)
      const stale = fresh ? fresh() : sql
      await stale.transaction((tx) => tx.query("SELECT set_config('app.owner_id', 'owner-B', true)"))
      const left = await as(stale, "botfleet_api", {}, async (tx) => (await tx.query<{ s: string | null }>("SELECT current_setting('app.owner_id', true) AS s")).rows[0]!.s)
      expect(left).toBe("")
      for (const t of [...OWNER_TABLES, ...VIEWS]) expect(await probe(stale, "botfleet_api", {}, t, [], "left ''")).toEqual([])
      if (stale !== sql) await stale.close()
    })

    it("a session whose owner was never set (a fresh connection) sees nothing", async () => {
      const clients = fresh ? [fresh()] : []
      for (const client of clients) {
        const setting = await as(client, "botfleet_api", {}, async (tx) => (await tx.query<{ s: string | null }>("SELECT current_setting('app.owner_id', true) AS s")).rows[0]!.s)
        expect(setting).toBeNull()
        for (const t of [...OWNER_TABLES, ...VIEWS]) expect(await probe(client, "botfleet_api", {}, t, [], "unset")).toEqual([])
        await client.close()
      }
    })

    it("as the api role, each owner sees its own rows in every table and view, and nobody else's", async () => {
      for (const owner of ["owner-A", "owner-B", "ownerC", COMMA]) {
        for (const t of [...OWNER_TABLES, ...VIEWS]) {
          expect(await probe(sql, "botfleet_api", { "app.owner_id": owner }, t, [owner], `api ${owner}`)).toEqual([owner])
        }
      }
      for (const t of API_REFUSED) await refused(sql, "botfleet_api", { "app.owner_id": "owner-A" }, `SELECT * FROM ${t}`, /permission denied/)
    })

    it("the auditor's owner list is a JSON array: a comma inside an owner id never makes two owners", async () => {
      const cases: Array<[string, ReadonlyArray<string>]> = [
        [JSON.stringify([COMMA]), [COMMA]],
        [JSON.stringify(["ownerC"]), ["ownerC"]],
        [JSON.stringify(["owner-B"]), ["owner-B"]],
        [JSON.stringify(["owner-A", "ownerC"]), ["owner-A", "ownerC"]],
        [JSON.stringify([]), []],
        [EMPTY, []]
      ]
      for (const [list, allowed] of cases) {
        for (const t of AUDITOR_TABLES) {
          const seen = await probe(sql, "botfleet_auditor", { "app.owner_ids": list }, t, allowed, `auditor ${list}`)
          expect(seen.every((o) => allowed.includes(o))).toBe(true)
        }
      }
      // ownerB's rows are behind none of those lists
      expect(await probe(sql, "botfleet_auditor", { "app.owner_ids": JSON.stringify([COMMA]) }, "audit_log", [COMMA], "auditor comma")).toEqual([COMMA])
      // the old comma-separated form, and lists that are not arrays of strings, are refused
      for (const list of [COMMA, "ownerC", '{"a":"ownerB"}', '["ownerC", 1]', "[ownerB"]) {
        for (const t of AUDITOR_TABLES) await refused(sql, "botfleet_auditor", { "app.owner_ids": list }, `SELECT owner_id FROM ${t}`, /app\.owner_ids must be a JSON array/)
      }
      // the auditor sees archived events only behind the audit rows it sees (no traffic)
      const types = await as(sql, "botfleet_auditor", { "app.owner_ids": JSON.stringify(["owner-A"]) }, async (tx) =>
        (await tx.query<{ type: string }>("SELECT DISTINCT type FROM events_archive ORDER BY 1")).rows.map((r) => r.type))
      expect(types).toEqual(["BotConfigChanged", "BotRegistered", "BotStarted", "LegacyRecordImported"])
      tally.probes++
      for (const t of OWNER_TABLES.filter((t) => !AUDITOR_TABLES.includes(t))) {
        await refused(sql, "botfleet_auditor", { "app.owner_ids": JSON.stringify(["owner-A"]) }, `SELECT * FROM ${t}`, /permission denied/)
      }
    })

    it("an insert for another owner, or for no owner, is refused by the policy; one for the set owner is accepted", async () => {
      const row = (owner: string, version: number) =>
        `INSERT INTO messages (bot_id, version, owner_id, direction, chat_id, delivery_state, at) VALUES ('bot-w', ${version}, '${owner}', 'in', 1, 'received', now())`
      await refused(sql, writer, { "app.owner_id": "owner-A" }, row("owner-B", 1), /row-level security/)
      await refused(sql, writer, {}, row("owner-A", 2), /row-level security/)
      await refused(sql, writer, { "app.owner_id": EMPTY }, row(EMPTY, 3), /row-level security/)
      const n = await as(sql, writer, { "app.owner_id": "owner-A" }, async (tx) => (await tx.query(row("owner-A", 4))).rowCount)
      expect(n).toBe(1)
    })

    it("the api role cannot write, read a partition directly or turn row security off", async () => {
      const insertB = "INSERT INTO messages (bot_id, version, owner_id, direction, chat_id, delivery_state, at) VALUES ('bot-b', 99, 'owner-B', 'in', 1, 'received', now())"
      await refused(sql, "botfleet_api", { "app.owner_id": "owner-A" }, insertB, /permission denied/)
      for (const t of OWNER_TABLES.filter((t) => t !== "owners")) {
        await refused(sql, "botfleet_api", { "app.owner_id": "owner-A" }, `SELECT * FROM ${t}_p00`, /permission denied/)
        await refused(sql, "botfleet_auditor", { "app.owner_ids": '["owner-A"]' }, `SELECT * FROM ${t}_p00`, /permission denied/)
      }
      for (const t of OWNER_TABLES) {
        await refused(sql, "botfleet_api", { "app.owner_id": "owner-A", row_security: "off" }, `SELECT * FROM ${t}`, /row-level security/)
      }
    })

    it("inRole, the helper the API uses, refuses an owner id outside the safe alphabet before running anything", async () => {
      for (const bad of [EMPTY, COMMA, "a b", "x".repeat(65)]) {
        tally.probes++
        await expect(inRole(sql, { role: "api", ownerId: bad }, (tx) => tx.query("SELECT * FROM bots"))).rejects.toMatchObject({ _tag: "OwnerIdInvalid" })
        tally.probes++
        await expect(inRole(sql, { role: "auditor", ownerIds: ["owner-A", bad] }, (tx) => tx.query("SELECT * FROM audit_log"))).rejects.toMatchObject({ _tag: "OwnerIdInvalid" })
      }
      const seen = await inRole(sql, { role: "api", ownerId: "owner-A" }, async (tx) => (await tx.query<{ owner_id: string }>("SELECT DISTINCT owner_id FROM fleet_overview")).rows)
      expect(seen.map((r) => r.owner_id)).toEqual(["owner-A"])
      // and leaves nothing behind on the connection
      const after = await sql.query<{ role: string; owner: string | null }>("SELECT current_user AS role, current_setting('app.owner_id', true) AS owner")
      expect(after.rows[0]!.role).not.toBe("botfleet_api")
      expect(after.rows[0]!.owner ?? "").toBe("")
    })

    it("the projector role writes rows of every owner, but can only append to the archive and the audit log, and cannot anchor", async () => {
      const n = await as(sql, "botfleet_projector", {}, async (tx) => {
        await tx.query("UPDATE bots SET config = bf_merge_patch(config, '{\"x\": 1}'::jsonb)")
        await tx.query("UPDATE projection_checkpoints SET updated_at = now()")
        return (await tx.query<{ n: string }>("SELECT count(DISTINCT owner_id) AS n FROM bots WHERE config ? 'x'")).rows[0]!.n
      })
      expect(n).toBe("5")
      for (const t of ["audit_log", "events_archive"]) {
        await refused(sql, "botfleet_projector", {}, `UPDATE ${t} SET actor = 'forged'`, /permission denied/)
        await refused(sql, "botfleet_projector", {}, `DELETE FROM ${t}`, /permission denied/)
        await refused(sql, "botfleet_projector", {}, `TRUNCATE ${t}`, /permission denied/)
      }
      await refused(sql, "botfleet_projector", {}, "INSERT INTO audit_anchors (owner_id, seq, lanes, anchor_hash, signature) VALUES ('owner-A', 99, '[]', 'x', 'y')", /permission denied/)
      await refused(sql, "botfleet_projector", {}, "DELETE FROM audit_anchors", /permission denied/)
      await refused(sql, "botfleet_auditor", { "app.owner_ids": '["owner-A"]' }, "DELETE FROM audit_anchors", /permission denied/)
      await refused(sql, "botfleet_auditor", { "app.owner_ids": '["owner-A"]' }, "UPDATE audit_anchors SET signature = 'x'", /permission denied/)
    })

    it("probed every table and view from every kind of session without one row leaking", () => {
      expect(tally.leaks).toEqual([])
      expect(tally.leakedRows).toBe(0)
      // every probe above ran: a probe skipped by mistake would show here
      expect(tally.probes).toBe(fresh ? 209 : 194)
    })
  })

securitySuite("PostgreSQL", async () => {
  const db = await createTestDatabase("projection_security")
  const sql = makePgSql(db.url, { max: 2 })
  return {
    sql,
    // a pool of one connection: the next transaction runs on the same connection as the last one
    fresh: () => makePgSql(db.url, { max: 1 }),
    close: async () => {
      await sql.close()
      await db.drop()
    }
  }
})

securitySuite("PGlite", async () => {
  const sql = await makePgliteSql()
  return { sql, fresh: null, close: () => sql.close() }
})
