import { randomBytes } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { migrate } from "../../src/db/migrator.js"
import { makePgSql } from "../../src/db/pgSql.js"
import type { SqlClient } from "../../src/db/sql.js"
import { createTestDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"
import { fleetEnv, replies, say, startTestNode } from "./support.js"
import type { TestNode } from "./support.js"

/*
 * `botfleet run` with least privilege: the node logs in as a role that owns nothing and is only
 * granted botfleet_runtime, botfleet_projector, botfleet_api and botfleet_auditor; a separate
 * login (MIGRATION_DATABASE_URL) applies the migrations. The node runs its bots, projects as the
 * projector, verifies and anchors the audit chain as the auditor.
 */

const suffix = randomBytes(4).toString("hex")
const nodeLogin = `bf_test_node_${suffix}`
const bareLogin = `bf_test_bare_${suffix}`
let admin: SqlClient
let db: Awaited<ReturnType<typeof createTestDatabase>>
let redis: ReturnType<typeof createTestPrefix>
let dataDir: string
let running: TestNode | null = null
const secretKey = randomBytes(32).toString("base64")

const urlAs = (login: string) => {
  const u = new URL(db.url)
  u.username = login
  return u.toString()
}

beforeAll(async () => {
  db = await createTestDatabase("least_privilege")
  redis = createTestPrefix("least-privilege")
  dataDir = await mkdtemp(join(tmpdir(), "bf-least-"))
  admin = makePgSql(db.url, { max: 2 })
  // the roles are made by the migrations (once per server); the logins are the deployment's
  await migrate(admin)
  await admin.exec(`CREATE ROLE ${nodeLogin} LOGIN; GRANT botfleet_runtime, botfleet_projector, botfleet_api, botfleet_auditor TO ${nodeLogin};
                    CREATE ROLE ${bareLogin} LOGIN; GRANT botfleet_runtime TO ${bareLogin};`)
})
afterAll(async () => {
  await running?.stop()
  await admin?.exec(`DROP OWNED BY ${nodeLogin}; DROP ROLE IF EXISTS ${nodeLogin}; DROP OWNED BY ${bareLogin}; DROP ROLE IF EXISTS ${bareLogin}`)
  await admin?.close()
  await db?.drop()
  await redis?.cleanup()
  await rm(dataDir, { recursive: true, force: true })
})

describe("a node with least privilege", () => {
  it("runs its bots, projects and verifies the audit chain as a login that owns nothing", async () => {
    // a trigger records who writes projection rows and anchors
    await admin.exec(`
      CREATE TABLE seen_writers (tbl text, who text);
      GRANT INSERT ON seen_writers TO PUBLIC;
      CREATE FUNCTION note_writer() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO seen_writers VALUES (TG_TABLE_NAME, current_user); RETURN NEW; END $$;
      CREATE TRIGGER note_writer AFTER INSERT ON messages FOR EACH ROW EXECUTE FUNCTION note_writer();
      CREATE TRIGGER note_writer AFTER INSERT ON audit_anchors FOR EACH ROW EXECUTE FUNCTION note_writer();`)
    const env = fleetEnv(
      { db: { url: urlAs(nodeLogin) }, redis, secretKey, dataDir },
      { MIGRATION_DATABASE_URL: db.url, AUDIT_VERIFY_EVERY_MS: "1000", NODE_ID: "lp-node" }
    )
    running = await startTestNode(env)
    const { node } = running
    const bot = node.demoBots[0]!
    await say(node, bot.username, { userId: 5, text: "hello" })
    await expect.poll(async () => (await replies(node, bot.username, 5)).length, { timeout: 30_000 }).toBeGreaterThan(0)
    await expect
      .poll(async () => (await admin.query<{ n: string }>("SELECT count(*) AS n FROM messages WHERE direction = 'in'")).rows[0]!.n, { timeout: 30_000 })
      .toBe("1")
    await expect
      .poll(async () => (await admin.query<{ node_id: string; ok: boolean }>("SELECT node_id, ok FROM audit_verifications ORDER BY id DESC LIMIT 1")).rows[0], { timeout: 30_000 })
      .toEqual({ node_id: "lp-node", ok: true })
    const writers = await admin.query<{ tbl: string; who: string }>("SELECT DISTINCT regexp_replace(tbl, '_p[0-9]+$', '') AS tbl, who FROM seen_writers ORDER BY 1")
    expect(writers.rows).toEqual([{ tbl: "audit_anchors", who: "botfleet_auditor" }, { tbl: "messages", who: "botfleet_projector" }])
    // the node's login itself may not rewrite history, nor change the schema
    const asNode = makePgSql(urlAs(nodeLogin), { max: 1 })
    try {
      await expect(asNode.query("DELETE FROM audit_log")).rejects.toThrow(/permission denied/)
      await expect(asNode.query("UPDATE events_archive SET actor = 'x'")).rejects.toThrow(/permission denied/)
      await expect(asNode.query("CREATE TABLE sneaky (x int)")).rejects.toThrow(/permission denied/)
      await expect(asNode.query("DELETE FROM audit_anchors")).rejects.toThrow(/permission denied/)
      await expect(asNode.query("DELETE FROM audit_verifications")).rejects.toThrow(/permission denied/)
      // a store a later migration adds is the node's without a grant of its own (default privileges)
      await admin.exec("CREATE TABLE later_store (k text PRIMARY KEY)")
      await asNode.query("INSERT INTO later_store VALUES ('x')")
      expect((await asNode.query("SELECT k FROM later_store")).rows).toEqual([{ k: "x" }])
    } finally {
      await asNode.close()
    }
    await running.stop()
    running = null
  }, 120_000)

  it("refuses to start as a login without the roles it works as, naming the GRANTs, and without a migration login says so", async () => {
    const bare = fleetEnv({ db: { url: urlAs(bareLogin) }, redis, secretKey, dataDir }, { MIGRATION_DATABASE_URL: db.url })
    await expect(startTestNode(bare)).rejects.toThrow(new RegExp(`GRANT botfleet_projector TO ${bareLogin};.*GRANT botfleet_auditor TO ${bareLogin};`))
    // no migration login: the node's own login may not run the migrator, and is told what to set
    const noMigrator = fleetEnv({ db: { url: urlAs(nodeLogin) }, redis, secretKey, dataDir })
    await expect(startTestNode(noMigrator)).rejects.toThrow(/set MIGRATION_DATABASE_URL/)
  }, 120_000)
})
