import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Either } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { parseApiToken } from "../../src/api/auth/apiToken.pure.js"
import { makeAuthenticator } from "../../src/api/auth/apiTokens.js"
import { makePgSql } from "../../src/db/pgSql.js"
import type { SqlClient } from "../../src/db/sql.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import type { DomainEvent } from "../../src/events/schema/catalogue.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import { makeProjector } from "../../src/projections/projector.js"
import { PROJECTION_TABLES } from "../../src/projections/mapping/rows.js"
import { makeFleetDirectory } from "../../src/runtime/fleetDirectory.js"
import { appendFacts, received, registered } from "../projections/fixtures.js"
import { createTestDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"
import { captureCli } from "./support.js"

/*
 * botfleet backup → restore onto an empty Redis prefix and database → the projections come back
 * row for row, and so do the REST API's owners and tokens (a token made before the backup works
 * after the restore, a revoked one stays refused); a damaged backup is refused before anything is
 * written. Real Redis and Postgres.
 */

interface Site {
  env: Record<string, string>
  log: EventLogService
  sql: SqlClient
  cleanup: () => Promise<void>
}

let source: Site
let target: Site
let dir: string

const site = async (label: string): Promise<Site> => {
  const db = await createTestDatabase(label)
  const redis = createTestPrefix(label)
  const env = {
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    REDIS_PREFIX: redis.prefix,
    BOTFLEET_SECRET_KEY: Buffer.alloc(32, 7).toString("base64"),
    DATA_DIR: dir,
    LOG_LEVEL: "warning"
  }
  const log = await Effect.runPromise(makeRedisEventLog({ url: redis.url, prefix: redis.prefix }))
  const sql = makePgSql(db.url)
  return {
    env,
    log,
    sql,
    cleanup: async () => {
      await Effect.runPromise(log.close)
      await sql.close()
      await redis.cleanup()
      await db.drop()
    }
  }
}

const cli = (s: Site, ...argv: Array<string>) => captureCli(s.env, argv)

const projectAll = async (s: Site) => {
  for (let p = 0; p < s.log.partitions; p++) {
    const projector = makeProjector({ log: s.log, sql: s.sql, partition: p, blockMs: 0 })
    for (;;) if ((await Effect.runPromise(projector.step)).caughtUp) break
  }
}

const KEYS: Record<string, string> = {
  owners: "owner_id", bots: "bot_id", bot_users: "bot_id, user_id", chats: "bot_id, chat_id", messages: "bot_id, version",
  daily_stats: "bot_id, day", daily_active_users: "bot_id, day, user_id", stats_first_seen: "bot_id, user_id",
  audit_log: "bot_id, version", events_archive: "bot_id, version", bot_sessions: "bot_id, session_key",
  imported_records: "bot_id, collection, record_key"
}

/** Every projection table row as JSON, in key order, without log positions and recorded times (the target log has its own). */
const dump = async (sql: SqlClient): Promise<Record<string, Array<string>>> => {
  const out: Record<string, Array<string>> = {}
  for (const t of Object.values(PROJECTION_TABLES).flat()) {
    const { rows } = await sql.query<{ r: string }>(`SELECT (to_jsonb(t) - 'position' - 'recorded_at')::text AS r FROM ${t} t ORDER BY ${KEYS[t]}`)
    out[t] = rows.map((x) => x.r)
  }
  return out
}

const conversation = (chatId: number, userId: number, from: number): Array<DomainEvent> => [
  { _tag: "UserSeen", userId, firstName: `User ${userId}`, at: "2026-01-01T10:00:00.000Z" },
  received(chatId, userId, from, "hello ✓ ünïcode"),
  { _tag: "ReplySent", chatId, messageId: from + 1, text: "hi there", at: "2026-01-01T10:00:01.000Z" },
  received(chatId, userId, from + 2, "second")
]

/** What the target's API answers a presented token: the principal, or why it refuses it. */
const authenticate = async (s: Site, token: string) => {
  const check = makeAuthenticator(s.sql)
  const verdict = await Effect.runPromise(check(token))
  // last-used times are written in the background: written now, so a backup taken next holds them
  await check.flush()
  return Either.isRight(verdict) ? verdict.right : verdict.left
}

let tokens: { read: string; write: string; admin: string; revoked: string; expired: string; readId: string; revokedId: string }

const countEvents = async (s: Site) => {
  let n = 0
  for (let p = 0; p < s.log.partitions; p++) n += (await Effect.runPromise(s.log.readPartition(p))).length
  return n
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "bf-backup-"))
  source = await site("backup_src")
  target = await site("backup_dst")
  expect((await cli(source, "migrate")).code).toBe(0)
  expect((await cli(target, "migrate")).code).toBe(0)
  const fleet = makeFleetDirectory(source.sql)
  // part 1: three bots with some history, projected (so in the archive)
  for (const [i, bot] of ["alpha", "bravo", "charlie"].entries()) {
    await appendFacts(source.log, bot, [registered(`owner-${i % 2}`, bot), { _tag: "BotConfigChanged", patch: { greeting: `hello from ${bot}` } }, ...conversation(100 + i, 10 + i, 1)])
    await Effect.runPromise(fleet.add(bot))
  }
  await projectAll(source)
  // the hot log trimmed below what is archived: the start of alpha's history is only in the archive
  const alphaPartition = source.log.partitionOf("alpha")
  const alphaEvents = await Effect.runPromise(source.log.readStream("alpha"))
  await Effect.runPromise(source.log.trimStream("alpha", 4))
  await Effect.runPromise(source.log.trimPartition(alphaPartition, alphaEvents[3]!.position))
  // part 2: events in the Redis tail only (not archived yet when the backup runs)
  await appendFacts(source.log, "alpha", conversation(100, 10, 10))
  await appendFacts(source.log, "delta", [registered("owner-2", "delta"), ...conversation(200, 20, 1)])
  // REST API access: two owners, tokens of every scope, one revoked and one expired
  expect((await cli(source, "owners", "add", "owner-0", "--name", "Owner Zero")).code).toBe(0)
  expect((await cli(source, "owners", "add", "owner-1")).code).toBe(0)
  const make = async (...args: Array<string>) => JSON.parse((await cli(source, "tokens", "create", ...args, "--json")).out) as { token: string; tokenId: string }
  const read = await make("--owner", "owner-0", "--label", "dashboard")
  const write = await make("--owner", "owner-1", "--scope", "write", "--expires", "30d")
  const admin = await make("--admin")
  const revoked = await make("--owner", "owner-0")
  const expired = await make("--owner", "owner-1")
  expect((await cli(source, "tokens", "revoke", revoked.tokenId)).code).toBe(0)
  await source.sql.query("UPDATE api_tokens SET expires_at = now() - interval '1 hour' WHERE token_id = $1", [expired.tokenId])
  // used once: its last-used time is part of what comes back
  expect(await authenticate(source, read.token)).toMatchObject({ ownerId: "owner-0", scope: "read" })
  tokens = { read: read.token, write: write.token, admin: admin.token, revoked: revoked.token, expired: expired.token, readId: read.tokenId, revokedId: revoked.tokenId }
}, 60_000)

afterAll(async () => {
  await source?.cleanup()
  await target?.cleanup()
  await rm(dir, { recursive: true, force: true })
})

describe("botfleet backup / restore", () => {
  it("backs up archive and tail, refuses a damaged copy writing nothing, and restores identical projections", async () => {
    const backupDir = join(dir, "backup")
    const b = await cli(source, "backup", backupDir, "--json")
    expect(b.err).toBe("")
    expect(b.code).toBe(0)
    const manifest = JSON.parse(b.out)
    // alpha 6 + 4, bravo 6, charlie 6, delta 5
    expect(manifest).toMatchObject({ format: "botfleet-backup", formatVersion: 1, bots: 4, events: 27, undecodable: 0 })
    expect(manifest.files.find((f: { file: string }) => f.file === "fleet_bots.ndjson").count).toBe(3)
    expect(manifest.files.find((f: { file: string }) => f.file === "api_access.ndjson")).toMatchObject({ kind: "access", count: 7 })
    // the token stays ciphertext
    const alphaFile = manifest.files.find((f: { partition?: number }) => f.partition === source.log.partitionOf("alpha")).file
    expect(await readFile(join(backupDir, alphaFile), "utf8")).toContain("v1:secret-ciphertext")
    // a second backup into the same folder is refused
    expect((await cli(source, "backup", backupDir)).code).toBe(1)
    // a log of fewer partitions than the archive was written with would leave events out: refused
    const fewer = await captureCli({ ...source.env, PARTITIONS: "4" }, ["backup", join(dir, "fewer")])
    expect(fewer.code).toBe(1)
    expect(fewer.err).toMatch(/events_archive: the archive holds \d+ events of partitions beyond the log's 4: set PARTITIONS/)

    // the source's projections catch up with the tail: this is what a restore must give back
    await projectAll(source)
    const original = await dump(source.sql)
    expect(original["events_archive"]).toHaveLength(27)

    // one byte changed in a copy: refused with the file and reason, nothing written
    const damaged = join(dir, "damaged")
    await cp(backupDir, damaged, { recursive: true })
    const text = await readFile(join(damaged, alphaFile), "utf8")
    await writeFile(join(damaged, alphaFile), text.replace("second", "sec0nd"))
    const refused = await cli(target, "restore", damaged)
    expect(refused.code).toBe(1)
    expect(refused.err).toContain(`${alphaFile}: checksum mismatch`)
    expect(await countEvents(target)).toBe(0)
    expect((await target.sql.query("SELECT * FROM fleet_bots")).rows).toEqual([])

    // a file missing, or a manifest of an unknown format version: refused too
    const incomplete = join(dir, "incomplete")
    await cp(backupDir, incomplete, { recursive: true })
    await rm(join(incomplete, "fleet_bots.ndjson"))
    const missing = await cli(target, "restore", incomplete)
    expect(missing.code).toBe(1)
    expect(missing.err).toContain("fleet_bots.ndjson: cannot read it (ENOENT): the backup is incomplete")
    await writeFile(join(incomplete, "manifest.json"), JSON.stringify({ ...manifest, formatVersion: 2 }))
    expect((await cli(target, "restore", incomplete)).err).toContain("manifest.json: format version 2 is not supported")
    expect(await countEvents(target)).toBe(0)
    expect((await target.sql.query("SELECT * FROM api_tokens")).rows).toEqual([])

    const r = await cli(target, "restore", backupDir, "--json")
    expect(r.err).toBe("")
    expect(r.code).toBe(0)
    expect(JSON.parse(r.out)).toMatchObject({ bots: 4, events: 27, fleetBots: 3, apiOwners: 2, apiTokens: 5, projected: 27, deadLettered: 0 })

    // the ops surface comes back: the same owners and tokens, and each token answers as before
    expect((await cli(target, "owners", "list", "--json")).out).toBe((await cli(source, "owners", "list", "--json")).out)
    const listed = (await cli(source, "tokens", "list", "--json")).out
    expect((await cli(target, "tokens", "list", "--json")).out).toBe(listed)
    expect(JSON.parse(listed).find((t: { tokenId: string }) => t.tokenId === tokens.readId)).toMatchObject({ label: "dashboard", lastUsedAt: expect.any(String) })
    expect(await authenticate(target, tokens.read)).toMatchObject({ ownerId: "owner-0", scope: "read" })
    expect(await authenticate(target, tokens.write)).toMatchObject({ ownerId: "owner-1", scope: "write" })
    expect(await authenticate(target, tokens.admin)).toMatchObject({ ownerId: null, scope: "admin" })
    expect(await authenticate(target, tokens.revoked)).toBe("revoked")
    expect(await authenticate(target, tokens.expired)).toBe("expired")
    // nothing in the backup reveals a token: only hashes
    const accessFile = await readFile(join(backupDir, "api_access.ndjson"), "utf8")
    // (the secret, as the API parses it: it may itself hold "_")
    for (const t of Object.values(tokens)) if (t.startsWith("bft_")) expect(accessFile).not.toContain(parseApiToken(t)!.secret)

    // versions, event ids and metadata preserved
    for (const bot of ["alpha", "delta"]) {
      const restored = await Effect.runPromise(target.log.readStream(bot))
      const archived = (await source.sql.query<{ event_id: string; version: number }>("SELECT event_id, version FROM events_archive WHERE bot_id = $1 ORDER BY version", [bot])).rows
      expect(restored.map((e) => [e.version, e.eventId])).toEqual(archived.map((a) => [a.version, a.event_id]))
    }
    expect(await dump(target.sql)).toEqual(original)
    expect((await target.sql.query<{ bot_id: string }>("SELECT bot_id FROM fleet_bots ORDER BY bot_id")).rows.map((x) => x.bot_id)).toEqual(["alpha", "bravo", "charlie"])

    // the target is no longer empty: a second restore is refused
    const again = await cli(target, "restore", backupDir)
    expect(again.code).toBe(1)
    expect(again.err).toContain("already holds events")
  }, 60_000)
})
