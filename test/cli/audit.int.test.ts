import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { migrate } from "../../src/db/migrator.js"
import { makePgSql } from "../../src/db/pgSql.js"
import type { SqlClient } from "../../src/db/sql.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import { makeProjector } from "../../src/projections/projector.js"
import { appendFacts, registered } from "../projections/fixtures.js"
import { createTestDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"
import { captureCli } from "./support.js"

/* `botfleet audit verify` and what `botfleet status` shows of it, in production mode. */

let env: Record<string, string>
let sql: SqlClient
let cleanup: () => Promise<void>
const cli = (...argv: Array<string>) => captureCli(env, argv)

beforeAll(async () => {
  const db = await createTestDatabase("cli_audit")
  const redis = createTestPrefix("cli-audit")
  const dir = await mkdtemp(join(tmpdir(), "bf-cli-audit-"))
  sql = makePgSql(db.url, { max: 2 })
  await migrate(sql)
  const log = makeMemoryEventLog({ partitions: 1 })
  for (const [bot, owner] of [["bot-1", "alice"], ["bot-2", "bob"], ["bot-3", "bob"]] as const) {
    await appendFacts(log, bot, [registered(owner, bot), { _tag: "BotStarted", nodeId: "n", fence: 1 }, { _tag: "BotConfigChanged", patch: { a: 1 } }, { _tag: "BotStopped", nodeId: "n", reason: "ops" }])
  }
  await Effect.runPromise(makeProjector({ log, sql, partition: 0, blockMs: 0 }).step)
  env = {
    DATABASE_URL: db.url, REDIS_URL: redis.url, REDIS_PREFIX: redis.prefix, PARTITIONS: "1",
    BOTFLEET_SECRET_KEY: Buffer.alloc(32, 9).toString("base64"), DATA_DIR: dir, LOG_LEVEL: "warning"
  }
  cleanup = async () => {
    await sql.close()
    await redis.cleanup()
    await db.drop()
    await rm(dir, { recursive: true, force: true })
  }
})
afterAll(async () => {
  await cleanup()
})

describe("botfleet audit verify", () => {
  it("verifies every owner's chain, anchors it with --anchor, and status shows the run", async () => {
    const before = await cli("status")
    expect(before.out).toContain("audit chain: not verified yet")
    const ok = await cli("audit", "verify")
    expect({ code: ok.code, err: ok.err }).toEqual({ code: 0, err: "" })
    expect(ok.out).toContain("the audit chain holds: 12 rows of 2 owners verified")
    const anchored = await cli("audit", "verify", "--anchor", "--json")
    expect(anchored.code).toBe(0)
    expect(JSON.parse(anchored.out)).toMatchObject({ ok: true, rows: 12, anchorsWritten: [{ ownerId: "alice", seq: 1, lanes: 1 }, { ownerId: "bob", seq: 1, lanes: 2 }] })
    const status = await cli("status")
    expect(status.out).toMatch(/audit chain: ok, 12 rows of 2 owners verified at \S+ by cli-/)
    expect(JSON.parse((await cli("status", "--json")).out).audit).toMatchObject({ ok: true, rows: 12, owners: 2, anchors: 2, firstBreak: null })
  }, 60_000)

  it("reports the first broken link (owner, bot, position, expected vs found) and exits 1", async () => {
    await sql.query("UPDATE audit_log SET actor = 'owner:mallory' WHERE bot_id = 'bot-3' AND version = 3")
    const broken = await cli("audit", "verify")
    expect(broken.code).toBe(1)
    expect(broken.out).toMatch(/first broken link: owner bob, bot bot-3, position 3 \(version 3\): row-hash: expected [0-9a-f]{64}, found [0-9a-f]{64}/)
    expect(broken.err).toContain("the audit chain is broken")
    const json = JSON.parse((await cli("audit", "verify", "--json")).out)
    expect(json.firstBreak).toMatchObject({ ownerId: "bob", botId: "bot-3", position: 3, version: 3, what: "row-hash" })
    // another owner's chain still holds
    expect((await cli("audit", "verify", "--owner", "alice")).code).toBe(0)
    // the node's record of a broken run is what status shows
    expect((await cli("audit", "verify", "--anchor")).code).toBe(1)
    expect((await cli("status")).out).toMatch(/audit chain: BROKEN \(verified at .* by cli-.*, 10 rows checked\): owner bob, bot bot-3, position 3/)
  }, 60_000)

  it("refuses a malformed owner id as a usage error", async () => {
    const r = await cli("audit", "verify", "--owner", "a,b")
    expect(r.code).toBe(2)
    expect(r.err).toContain("--owner: owner id \"a,b\" refused")
  })
})
