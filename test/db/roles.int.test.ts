import { randomBytes } from "node:crypto"
import { cp, mkdtemp, readdir, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { DEFAULT_MIGRATIONS_DIR, migrate } from "../../src/db/migrator.js"
import { makePgSql } from "../../src/db/pgSql.js"
import { inRole, missingRoleGrants, readInRole } from "../../src/db/roles.js"
import type { SqlClient } from "../../src/db/sql.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import { makeProjector } from "../../src/projections/projector.js"
import { appendFacts, received, registered } from "../projections/fixtures.js"
import { createTestDatabase } from "../support/db.js"

/*
 * Least privilege on one login: what runs as which role, what a login without the roles gets, and
 * the migration that refuses owner ids outside the safe alphabet.
 */

let db: Awaited<ReturnType<typeof createTestDatabase>>
let sql: SqlClient
const login = `bf_test_login_${randomBytes(4).toString("hex")}`

beforeAll(async () => {
  db = await createTestDatabase("roles")
  sql = makePgSql(db.url, { max: 3 })
  await migrate(sql)
  await sql.exec(`CREATE ROLE ${login} LOGIN`)
})
afterAll(async () => {
  await sql?.exec(`DROP OWNED BY ${login}; DROP ROLE IF EXISTS ${login}`)
  await sql?.close()
  await db?.drop()
})

const asLogin = () => {
  const url = new URL(db.url)
  url.username = login
  return makePgSql(url.toString(), { max: 1 })
}

describe("database roles", () => {
  it("the projector writes as botfleet_projector, whatever the login", async () => {
    // a trigger records who inserts a bot row
    await sql.exec(`
      CREATE TABLE seen_writers (who text);
      GRANT INSERT ON seen_writers TO PUBLIC;
      CREATE FUNCTION note_writer() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO seen_writers VALUES (current_user); RETURN NEW; END $$;
      CREATE TRIGGER note_writer AFTER INSERT ON bots FOR EACH ROW EXECUTE FUNCTION note_writer();`)
    const log = makeMemoryEventLog({ partitions: 1 })
    await appendFacts(log, "bot-r", [registered("owner-r", "bot-r"), received(1, 2, 3)])
    const p = makeProjector({ log, sql, partition: 0, blockMs: 0 })
    expect((await Effect.runPromise(p.step)).projected).toBe(2)
    const who = await sql.query<{ who: string }>("SELECT who FROM seen_writers")
    expect(who.rows).toEqual([{ who: "botfleet_projector" }])
  })

  it("a login that is not granted the roles is told which GRANTs it needs, and runs nothing as them", async () => {
    const restricted = asLogin()
    try {
      expect(await missingRoleGrants(restricted)).toEqual([`GRANT botfleet_projector TO ${login};`, `GRANT botfleet_api TO ${login};`, `GRANT botfleet_auditor TO ${login};`])
      let ran = false
      const failure = await inRole(restricted, { role: "api", ownerId: "owner-r" }, async () => {
        ran = true
      }).catch((e: unknown) => e)
      expect(ran).toBe(false)
      expect(failure).toMatchObject({ _tag: "RoleSwitchFailed", role: "botfleet_api" })
      expect((failure as Error).message).toMatch(/GRANT botfleet_api TO <login>/)
      await sql.exec(`GRANT botfleet_api TO ${login}`)
      expect(await missingRoleGrants(restricted)).toEqual([`GRANT botfleet_projector TO ${login};`, `GRANT botfleet_auditor TO ${login};`])
      const seen = await inRole(restricted, { role: "api", ownerId: "owner-r" }, async (tx) => (await tx.query<{ bot_id: string }>("SELECT bot_id FROM bots")).rows)
      expect(seen).toEqual([{ bot_id: "bot-r" }])
      const batched = await readInRole(restricted, { role: "api", ownerId: "owner-r" }, [{ text: "SELECT bot_id FROM bots" }])
      expect(batched[0]!.rows).toEqual([{ bot_id: "bot-r" }])
      expect(await readInRole(restricted, { role: "auditor", ownerIds: ["owner-r"] }, [{ text: "SELECT 1" }]).catch((e: unknown) => e)).toMatchObject({
        _tag: "RoleSwitchFailed",
        role: "botfleet_auditor"
      })
      // a statement the role may not run fails as itself, not as a role switch
      expect(await readInRole(restricted, { role: "api", ownerId: "owner-r" }, [{ text: "SELECT * FROM api_tokens" }]).catch((e: unknown) => e)).toMatchObject({ code: "42501" })
      // granted the role, the login still sees nothing without it: the api role is what reads
      const direct = await restricted.query<{ n: string }>("SELECT count(*) AS n FROM bots").catch((e: Error) => e.message)
      expect(direct).toEqual({ rows: [{ n: "0" }], rowCount: 1 })
    } finally {
      await restricted.close()
    }
  })

  it("a batch runs every statement as the role, for the owner, and the settings end with it", async () => {
    const one = makePgSql(db.url, { max: 1 })
    try {
      const [who, bots] = await readInRole(one, { role: "api", ownerId: "owner-r" }, [
        { text: "SELECT current_user AS who, current_setting('app.owner_id') AS owner" },
        { text: "SELECT bot_id FROM bots" }
      ])
      expect(who!.rows).toEqual([{ who: "botfleet_api", owner: "owner-r" }])
      expect(bots!.rows).toEqual([{ bot_id: "bot-r" }])
      expect((await readInRole(one, { role: "api", ownerId: "someone-else" }, [{ text: "SELECT bot_id FROM bots" }]))[0]!.rows).toEqual([])
      await expect(readInRole(one, { role: "api", ownerId: "owner-r" }, [{ text: "SELECT 1/0" }])).rejects.toThrow(/division by zero/)
      await expect(readInRole(one, { role: "api", ownerId: "not valid!" }, [{ text: "SELECT 1" }])).rejects.toMatchObject({ _tag: "OwnerIdInvalid" })
      const { rows } = await one.query<{ who: string; owner: string }>("SELECT current_user AS who, current_setting('app.owner_id', true) AS owner")
      expect(rows[0]).toEqual({ who: "postgres", owner: "" })
    } finally {
      await one.close()
    }
  })

  it("a prepared statement shows each owner its own rows, however often it ran before and for whom", async () => {
    const one = makePgSql(db.url, { max: 1 })
    try {
      const bots = { name: "t_bots", text: "SELECT bot_id FROM bots ORDER BY bot_id" }
      // first prepared and run as the login itself (no row-level security): every bot
      expect((await one.batch([bots]))[0]!.rows.length).toBeGreaterThanOrEqual(1)
      // past the runs after which Postgres may switch to a generic plan
      for (let i = 0; i < 8; i++) {
        expect((await readInRole(one, { role: "api", ownerId: "owner-r" }, [bots]))[0]!.rows, `run ${i}`).toEqual([{ bot_id: "bot-r" }])
        expect((await readInRole(one, { role: "api", ownerId: "someone-else" }, [bots]))[0]!.rows, `run ${i}`).toEqual([])
      }
    } finally {
      await one.close()
    }
  })

  it("a transaction's role and owner end with it", async () => {
    const one = makePgSql(db.url, { max: 1 })
    try {
      await inRole(one, { role: "api", ownerId: "owner-r" }, (tx) => tx.query("SELECT 1"))
      await inRole(one, { role: "auditor", ownerIds: ["owner-r", "other"] }, (tx) => tx.query("SELECT 1")).catch(() => undefined)
      const { rows } = await one.query<{ who: string; owner: string; owners: string }>(
        "SELECT current_user AS who, current_setting('app.owner_id', true) AS owner, current_setting('app.owner_ids', true) AS owners"
      )
      expect(rows[0]).toEqual({ who: "postgres", owner: "", owners: "" })
      // a failing body rolls back and leaves nothing either
      await expect(inRole(one, { role: "projector" }, (tx) => tx.query("SELECT 1/0"))).rejects.toThrow(/division by zero/)
      expect((await one.query<{ who: string }>("SELECT current_user AS who")).rows[0]!.who).toBe("postgres")
    } finally {
      await one.close()
    }
  })
})

describe("migration 0040", () => {
  it("refuses a database holding owner ids outside the safe alphabet, naming them, and applies once they are fixed", async () => {
    const scratch = await createTestDatabase("owner_ids")
    const own = makePgSql(scratch.url, { max: 2 })
    const dir = await mkdtemp(join(tmpdir(), "bf-migrations-"))
    try {
      for (const f of await readdir(DEFAULT_MIGRATIONS_DIR)) if (f.endsWith(".sql") && Number(f.slice(0, 4)) < 40) await cp(join(DEFAULT_MIGRATIONS_DIR, f), join(dir, f))
      await migrate(own, dir)
      const bot = (id: string, owner: string) =>
        own.query(
          `INSERT INTO bots (bot_id, owner_id, name, kind, mode, state, registered_at, version, last_event_at, log_partition)
           VALUES ($1, $2, 'n', 'builtin', 'polling', 'registered', now(), 1, now(), 0)`,
          [id, owner]
        )
      await bot("b-empty", "")
      await bot("b-comma", "ownerC,ownerB")
      await bot("b-space", "owner B")
      await bot("b-ok", "owner-ok")
      await own.query("INSERT INTO owners (owner_id, first_bot_at, bots) VALUES ('', now(), 1), ('owner-ok', now(), 1)")
      const failure = await migrate(own).catch((e: Error) => e)
      expect(failure).toMatchObject({ _tag: "MigrationFailed", file: "0040_owner_ids_and_policies.sql" })
      const message = (failure as Error).message
      expect(message).toContain("4 rows have an owner id outside the safe alphabet")
      expect(message).toContain("3 distinct owner ids, e.g. '', 'owner B', 'ownerC,ownerB'")
      expect(message).toContain("rows per table: owners: 1, bots: 3")
      // nothing of it (or after it) was applied
      const applied = await own.query<{ v: number }>("SELECT max(version) AS v FROM schema_migrations")
      expect(applied.rows[0]!.v).toBeLessThan(40)
      await own.exec("UPDATE bots SET owner_id = 'legacy-' || bot_id WHERE owner_id !~ '^[A-Za-z0-9_.@-]{1,64}$'; DELETE FROM owners WHERE owner_id = ''")
      await migrate(own)
      await expect(bot("b-new", "")).rejects.toThrow(/bots_owner_id_valid/)
    } finally {
      await rm(dir, { recursive: true, force: true })
      await own.close()
      await scratch.drop()
    }
  })
})
