import { cp, mkdtemp, readdir, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Fiber } from "effect"
import fc from "fast-check"
import { beforeAll, describe, expect, it } from "vitest"
import { writeAnchor } from "../../src/audit/anchors.js"
import { runVerification, verifyPeriodically, lastVerification } from "../../src/audit/periodic.js"
import { verifyAudit, verifyOwner } from "../../src/audit/verify.js"
import { DEFAULT_MIGRATIONS_DIR, migrate } from "../../src/db/migrator.js"
import { makePgSql } from "../../src/db/pgSql.js"
import type { SqlClient } from "../../src/db/sql.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import type { DomainEvent } from "../../src/events/schema/catalogue.js"
import { anchorKeyFrom, auditRowHash, eventHash } from "../../src/projections/auditChain.js"
import { makeProjector } from "../../src/projections/projector.js"
import type { Projector } from "../../src/projections/projector.js"
import { rebuild } from "../../src/projections/rebuild.js"
import { createTestDatabase, useMigratedDatabase } from "../support/db.js"
import { appendFacts, received, registered } from "../projections/fixtures.js"

const run = Effect.runPromise
const database = useMigratedDatabase("audit_chain")
let sql: SqlClient
let log: ReturnType<typeof makeMemoryEventLog>
const key = anchorKeyFrom(new Uint8Array(32).fill(7))

const drain = async (p: Projector) => {
  for (let i = 0; i < 10_000; i++) {
    const r = await run(p.step)
    if (r.caughtUp && r.projected === 0) return
  }
  throw new Error("never caught up")
}
const project = async () => {
  for (const p of [0, 1]) await drain(makeProjector({ log, sql, partition: p, blockMs: 0, batchSize: 3 }))
}

/** A bot's control-plane history: 6 audited events (and traffic in between, which is not audited). */
const history = (owner: string, bot: string, tag = ""): DomainEvent[] => [
  registered(owner, bot),
  { _tag: "BotStarted", nodeId: "n1", fence: 1 },
  received(1, 2, 3, `hello ${tag}`),
  { _tag: "BotConfigChanged", patch: { greeting: `hi "${tag}" \\ ü 🎉`, drop: null } },
  { _tag: "BotCrashed", nodeId: "n1", reason: `boom\n${tag}\u0001`, attempt: 1 },
  received(1, 2, 4),
  { _tag: "BotStopped", nodeId: "n1", reason: "ops" },
  { _tag: "BotStarted", nodeId: "n2", fence: 2 }
]

/** Any character Postgres text can hold: no NUL, no lone surrogate (neither reaches the archive). */
const textChar = fc.integer({ min: 1, max: 0x10ffff }).filter((c) => c < 0xd800 || c > 0xdfff).map((c) => String.fromCodePoint(c))

const verifyOne = (ownerId: string) => run(verifyOwner({ sql, anchorKey: key, ownerId }))

beforeAll(async () => {
  sql = database()
  log = makeMemoryEventLog({ partitions: 2 })
  for (const [owner, bots] of [["own-ok", ["ok-1", "ok-2"]], ["own-a", ["a-1"]], ["own-b", ["b-1"]], ["own-c", ["c-1"]], ["own-d", ["d-1"]], ["own-e", ["e-1"]], ["own-f", ["f-1"]]] as const) {
    for (const bot of bots) await appendFacts(log, bot, history(owner, bot, bot))
  }
  await project()
})

describe("the audit hash chain", () => {
  it("chains each bot's audit rows in version order across batches, and verifies", async () => {
    const { rows } = await sql.query<{ chain_seq: number; version: number; prev_hash: string | null; row_hash: string; event_type: string }>(
      "SELECT chain_seq, version, prev_hash, row_hash, event_type FROM audit_log WHERE bot_id = 'ok-1' ORDER BY version"
    )
    expect(rows.map((r) => r.event_type)).toEqual(["BotRegistered", "BotStarted", "BotConfigChanged", "BotCrashed", "BotStopped", "BotStarted"])
    expect(rows.map((r) => r.chain_seq)).toEqual([1, 2, 3, 4, 5, 6])
    expect(rows[0]!.prev_hash).toBeNull()
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.prev_hash).toBe(rows[i - 1]!.row_hash)
    const report = await run(verifyAudit({ sql, anchorKey: key }))
    expect(report.ok).toBe(true)
    expect(report.rows).toBe(8 * 6)
    expect(report.owners.map((o) => o.ownerId)).toEqual(["own-a", "own-b", "own-c", "own-d", "own-e", "own-f", "own-ok"])
  })

  it("computes the same hashes in SQL (the migration's backfill) as in TypeScript, for any text", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: fc.oneof(fc.constantFrom('"', "\\", "\n", "\t", "\u0001", "\u001f", "\u007f", "\u2028", "/"), textChar), maxLength: 40 }),
        fc.string({ unit: "grapheme", maxLength: 20 }),
        fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        fc.option(fc.string({ maxLength: 10 }).filter((s) => !s.includes("\u0000")), { nil: null }),
        fc.date({ min: new Date("1970-01-01T00:00:00Z"), max: new Date("2999-12-31T23:59:59Z"), noInvalidDate: true }),
        async (text, other, version, causation, at) => {
          const data = JSON.stringify({ text, n: version, nested: [other, null, 1.5] })
          const { rows } = await sql.query<{ at: string; data: string; summary: string; event_sql: string; row_sql: string }>(
            `SELECT bf_instant_text($1::timestamptz) AS at, $2::jsonb::text AS data, $3::jsonb::text AS summary,
                    bf_audit_event_hash($4, 'bot-1', $5, $6, 2, $1::timestamptz, $7, $8, $9, $2::jsonb) AS event_sql,
                    bf_audit_row_hash($10, 'owner.x@y', 'bot-1', 7, $5, $11, $9, 'owner', $6, $3::jsonb, $1::timestamptz) AS row_sql`,
            [at.toISOString(), data, JSON.stringify({ reason: text }), `ev-${other}`, version, `T${other}`, text, causation, `actor:${text}`, causation ?? null, "e".repeat(64)]
          )
          const r = rows[0]!
          expect(eventHash({
            event_id: `ev-${other}`, bot_id: "bot-1", version, type: `T${other}`, schema_version: 2, occurred_at: r.at, correlation_id: text,
            causation_id: causation, actor: `actor:${text}`, data: r.data
          })).toBe(r.event_sql)
          expect(auditRowHash({
            prev_hash: causation ?? null, owner_id: "owner.x@y", bot_id: "bot-1", chain_seq: 7, version, event_hash: "e".repeat(64),
            actor: `actor:${text}`, actor_kind: "owner", event_type: `T${other}`, summary: r.summary, occurred_at: r.at
          })).toBe(r.row_sql)
        }
      ),
      { numRuns: 150 }
    )
  })

  it("reports an audit row rewritten alone (its own hash)", async () => {
    await sql.query("UPDATE audit_log SET summary = '{\"changedKeys\": [\"other\"]}' WHERE bot_id = 'a-1' AND event_type = 'BotConfigChanged'")
    const r = await verifyOne("own-a")
    expect(r.break).toMatchObject({ ownerId: "own-a", botId: "a-1", position: 3, version: 4, what: "row-hash" })
    expect(r.break!.expected).not.toBe(r.break!.found)
  })

  it("reports an archived event rewritten alone (the event hash the row was chained with)", async () => {
    await sql.query("UPDATE events_archive SET data = jsonb_set(data, '{reason}', '\"nothing happened\"') WHERE bot_id = 'b-1' AND type = 'BotCrashed'")
    const r = await verifyOne("own-b")
    expect(r.break).toMatchObject({ botId: "b-1", position: 4, version: 5, what: "event-hash" })
  })

  it("reports an audit row deleted from the middle of its lane, and an archived event deleted", async () => {
    await sql.query("DELETE FROM audit_log WHERE bot_id = 'c-1' AND chain_seq = 2")
    expect((await verifyOne("own-c")).break).toMatchObject({ botId: "c-1", position: 3, what: "position", expected: "position 2", found: "position 3" })
    await sql.query("DELETE FROM events_archive WHERE bot_id = 'c-1' AND version = 1")
    expect((await verifyOne("own-c")).break).toMatchObject({ botId: "c-1", position: 1, what: "event-missing" })
  })

  /** What someone holding the tables' owner role could do: rewrite an event in both tables and re-chain the lane from there. */
  const rewriteAndRechain = async (bot: string, version: number, reason: string) => {
    await sql.query("UPDATE events_archive SET data = jsonb_set(data, '{reason}', to_jsonb($3::text)) WHERE bot_id = $1 AND version = $2", [bot, version, reason])
    await sql.query("UPDATE audit_log SET summary = jsonb_set(summary, '{reason}', to_jsonb($3::text)) WHERE bot_id = $1 AND version = $2", [bot, version, reason])
    const { rows } = await sql.query<{
      bot_id: string; version: number; owner_id: string; actor: string; actor_kind: string; event_type: string; summary: string; occurred_at: string
      chain_seq: number; event_id: string; type: string; schema_version: number; e_at: string; correlation_id: string; causation_id: string | null; e_actor: string; data: string
    }>(
      `SELECT a.bot_id, a.version, a.owner_id, a.actor, a.actor_kind, a.event_type, a.summary::text AS summary, bf_instant_text(a.occurred_at) AS occurred_at,
              a.chain_seq, e.event_id, e.type, e.schema_version, bf_instant_text(e.occurred_at) AS e_at, e.correlation_id, e.causation_id, e.actor AS e_actor, e.data::text AS data
         FROM audit_log a JOIN events_archive e USING (bot_id, version) WHERE a.bot_id = $1 ORDER BY a.version`,
      [bot]
    )
    let prev: string | null = null
    for (const r of rows) {
      const event_hash = eventHash({ event_id: r.event_id, bot_id: r.bot_id, version: r.version, type: r.type, schema_version: r.schema_version, occurred_at: r.e_at, correlation_id: r.correlation_id, causation_id: r.causation_id, actor: r.e_actor, data: r.data })
      const row_hash = auditRowHash({ prev_hash: prev, owner_id: r.owner_id, bot_id: r.bot_id, chain_seq: r.chain_seq, version: r.version, event_hash, actor: r.actor, actor_kind: r.actor_kind, event_type: r.event_type, summary: r.summary, occurred_at: r.occurred_at })
      await sql.query("UPDATE audit_log SET event_hash = $3, prev_hash = $4, row_hash = $5 WHERE bot_id = $1 AND version = $2", [r.bot_id, r.version, event_hash, prev, row_hash])
      prev = row_hash
    }
  }

  it("an archive and audit log rewritten together and re-chained pass the links, but not the owner's anchor", async () => {
    const first = await verifyOne("own-d")
    expect(first.break).toBeNull()
    expect((await run(writeAnchor({ sql, anchorKey: key, ownerId: "own-d", heads: first.heads })))?.seq).toBe(1)
    // nothing moved since: no second anchor
    expect(await run(writeAnchor({ sql, anchorKey: key, ownerId: "own-d", heads: first.heads }))).toBeNull()
    await rewriteAndRechain("d-1", 5, "a harmless restart")
    const r = await verifyOne("own-d")
    expect(r.break).toMatchObject({ ownerId: "own-d", botId: "d-1", position: 6, what: "anchor-mismatch", expected: first.heads[0]![2] })
  })

  it("without an anchor the same rewrite goes unnoticed: which is why nodes anchor periodically", async () => {
    await rewriteAndRechain("ok-2", 5, "rewritten before any anchor")
    expect((await verifyOne("own-ok")).break).toBeNull()
  })

  it("reports a lane cut short after its anchor", async () => {
    const first = await verifyOne("own-e")
    await run(writeAnchor({ sql, anchorKey: key, ownerId: "own-e", heads: first.heads }))
    await sql.query("DELETE FROM audit_log WHERE bot_id = 'e-1' AND chain_seq >= 5")
    expect((await verifyOne("own-e")).break).toMatchObject({ botId: "e-1", position: 6, what: "lane-truncated", found: "the lane ends at position 4" })
    await sql.query("DELETE FROM audit_log WHERE bot_id = 'e-1'")
    expect((await verifyOne("own-e")).break).toMatchObject({ botId: "e-1", what: "lane-truncated", found: "no audit row left in the lane" })
  })

  it("reports an anchor forged without the key, and anchors rewritten or deleted", async () => {
    const first = await verifyOne("own-f")
    await run(writeAnchor({ sql, anchorKey: key, ownerId: "own-f", heads: first.heads }))
    // signed with another key
    const forged = await run(writeAnchor({ sql, anchorKey: anchorKeyFrom(new Uint8Array(32)), ownerId: "own-f", heads: [["f-1", 7, "f".repeat(64)]] }))
    expect(forged?.seq).toBe(2)
    expect((await verifyOne("own-f")).break).toMatchObject({ ownerId: "own-f", botId: null, position: 2, what: "anchor-signature" })
    await sql.query("DELETE FROM audit_anchors WHERE owner_id = 'own-f' AND seq = 2")
    expect((await verifyOne("own-f")).break).toBeNull()
    await sql.query("UPDATE audit_anchors SET lanes = '[[\"f-1\", 5, \"x\"]]' WHERE owner_id = 'own-f' AND seq = 1")
    expect((await verifyOne("own-f")).break).toMatchObject({ botId: null, position: 1, what: "anchor-chain" })
  })

  it("a verification run anchors only the owners that verified, records its result, and finds the first break", async () => {
    const { report, anchors } = await run(runVerification({ sql, anchorKey: key, nodeId: "node-t", anchor: true, record: true }))
    expect(report.ok).toBe(false)
    expect(report.firstBreak).toMatchObject({ ownerId: "own-a", what: "row-hash" })
    expect(anchors.map((a) => a.ownerId)).toEqual(["own-ok"])
    const last = await lastVerification(sql)
    expect(last).toMatchObject({ nodeId: "node-t", ok: false, owners: 7, anchors: 1, firstBreak: { ownerId: "own-a", botId: "a-1", what: "row-hash" } })
  })

  it("the node's periodic verification records its runs", async () => {
    const before = (await lastVerification(sql))!.finishedAt
    const fiber = Effect.runFork(verifyPeriodically({ sql, anchorKey: key, nodeId: "node-p", every: "300 millis" }))
    try {
      for (let i = 0; i < 300 && (await lastVerification(sql))?.nodeId !== "node-p"; i++) await new Promise((r) => setTimeout(r, 100))
      const last = (await lastVerification(sql))!
      expect(last.nodeId).toBe("node-p")
      expect(last.finishedAt >= before).toBe(true)
      expect(last.ok).toBe(false)
    } finally {
      await run(Fiber.interrupt(fiber))
    }
  })
})

describe("rebuild audit", () => {
  it("makes the very same chain (rows, positions, hashes) from the archive", async () => {
    const db = await createTestDatabase("audit_rebuild")
    const own = makePgSql(db.url, { max: 4 })
    try {
      await migrate(own)
      const l = makeMemoryEventLog({ partitions: 3 })
      for (const bot of ["r-1", "r-2", "r-3", "r-4"]) await appendFacts(l, bot, [...history(`own-${bot.slice(-1)}`, bot, bot), ...history(`own-${bot.slice(-1)}`, bot, bot).slice(1)])
      for (const p of [0, 1, 2]) {
        const projector = makeProjector({ log: l, sql: own, partition: p, blockMs: 0, batchSize: 4 })
        for (let i = 0; i < 100; i++) if ((await run(projector.step)).caughtUp) break
      }
      const before = await own.query("SELECT bot_id, version, chain_seq, event_hash, prev_hash, row_hash FROM audit_log ORDER BY bot_id, version")
      expect(before.rows.length).toBe(4 * 11)
      const report = await run(rebuild({ sql: own, projection: "audit", batchSize: 5 }))
      expect(report.identical).toBe(true)
      const after = await own.query("SELECT bot_id, version, chain_seq, event_hash, prev_hash, row_hash FROM audit_log ORDER BY bot_id, version")
      expect(after.rows).toEqual(before.rows)
      expect((await run(verifyAudit({ sql: own, anchorKey: key }))).ok).toBe(true)
    } finally {
      await own.close()
      await db.drop()
    }
  })
})

describe("migration 0041", () => {
  it("chains the audit rows projected before it, as the projector would", async () => {
    const db = await createTestDatabase("audit_backfill")
    const own = makePgSql(db.url, { max: 2 })
    const dir = await mkdtemp(join(tmpdir(), "bf-migrations-"))
    try {
      for (const f of await readdir(DEFAULT_MIGRATIONS_DIR)) if (f.endsWith(".sql") && Number(f.slice(0, 4)) <= 40) await cp(join(DEFAULT_MIGRATIONS_DIR, f), join(dir, f))
      await migrate(own, dir)
      // rows as the projector of the previous release wrote them: no chain columns yet
      for (const [bot, owner] of [["old-1", "own-x"], ["old-2", "own-x"]] as const) {
        for (const [version, type, data] of [[1, "BotRegistered", { ownerId: owner, name: "n" }], [2, "BotStarted", { nodeId: "n", fence: 1 }], [3, "BotStopped", { nodeId: "n", reason: "q\"uote\n" }]] as const) {
          await own.query(
            `INSERT INTO events_archive (bot_id, version, owner_id, log_partition, position, event_id, type, schema_version, occurred_at, correlation_id, causation_id, actor, data)
             VALUES ($1, $2, $3, 0, $6, $7, $4, 1, '2026-01-01T00:00:00.123456Z', 'c', NULL, 'system', $5::jsonb)`,
            [bot, version, owner, type, JSON.stringify(data), `${version}-0`, `${bot}-e${version}`]
          )
          await own.query(
            `INSERT INTO audit_log (bot_id, version, owner_id, actor, actor_kind, event_type, summary, occurred_at, log_partition, position)
             VALUES ($1, $2, $3, 'system', 'system', $4, $5::jsonb, '2026-01-01T00:00:00.123456Z', 0, $6)`,
            [bot, version, owner, type, JSON.stringify({ reason: "ü \u0002" }), `${version}-0`]
          )
        }
      }
      await migrate(own)
      const report = await run(verifyAudit({ sql: own, anchorKey: key }))
      expect(report).toMatchObject({ ok: true, rows: 6 })
      const seqs = await own.query<{ chain_seq: number }>("SELECT chain_seq FROM audit_log WHERE bot_id = 'old-2' ORDER BY version")
      expect(seqs.rows.map((r) => r.chain_seq)).toEqual([1, 2, 3])
    } finally {
      await rm(dir, { recursive: true, force: true })
      await own.close()
      await db.drop()
    }
  })
})
