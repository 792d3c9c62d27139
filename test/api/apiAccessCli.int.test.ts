import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Either } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeAuthenticator } from "../../src/api/auth/apiTokens.js"
import { makePgSql } from "../../src/db/pgSql.js"
import type { SqlClient } from "../../src/db/sql.js"
import { migrate } from "../../src/db/migrator.js"
import { captureCli } from "../cli/support.js"
import { createTestDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"

/* `botfleet owners` and `botfleet tokens`: shown once, stored hashed, expiring, revocable. */

let env: Record<string, string>
let sql: SqlClient
let cleanup: () => Promise<void>
const cli = (...argv: Array<string>) => captureCli(env, argv)

beforeAll(async () => {
  const db = await createTestDatabase("api_access_cli")
  const redis = createTestPrefix("api-access-cli")
  const dir = await mkdtemp(join(tmpdir(), "bf-api-access-"))
  sql = makePgSql(db.url, { max: 2 })
  await migrate(sql)
  env = { DATABASE_URL: db.url, REDIS_URL: redis.url, REDIS_PREFIX: redis.prefix, BOTFLEET_SECRET_KEY: Buffer.alloc(32, 3).toString("base64"), DATA_DIR: dir, LOG_LEVEL: "warning" }
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

describe("botfleet owners and tokens", () => {
  it("adds owners, makes tokens shown once and stored only as a hash, lists and revokes them", async () => {
    expect((await cli("owners", "add", "alice", "--name", "Alice")).code).toBe(0)
    const again = await cli("owners", "add", "alice")
    expect([again.code, again.err]).toEqual([1, expect.stringContaining("already exists")])
    expect((await cli("owners", "add", "not valid!")).code).toBe(1)
    const noOwner = await cli("tokens", "create", "--owner", "bob")
    expect([noOwner.code, noOwner.err]).toEqual([1, expect.stringContaining("owners add bob")])
    expect((await cli("tokens", "create")).code).toBe(2)
    expect((await cli("tokens", "create", "--owner", "alice", "--expires", "yesterday")).code).toBe(2)

    const made = await cli("tokens", "create", "--owner", "alice", "--scope", "write", "--expires", "30d", "--label", "ci")
    expect(made.code).toBe(0)
    const token = made.out.trim()
    expect(token).toMatch(/^bft_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/)
    expect(made.err).toContain("not shown again")
    const { rows } = await sql.query<{ secret_hash: string }>("SELECT secret_hash FROM api_tokens")
    expect(rows).toHaveLength(1)
    expect(rows[0]!.secret_hash).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(JSON.stringify(rows)).not.toContain(token.slice(21))

    // no cache: the revocation below shows on the next request
    const authenticate = makeAuthenticator(sql, { cacheMs: 0 })
    const ok = await Effect.runPromise(authenticate(token))
    expect(Either.getOrThrow(ok)).toMatchObject({ ownerId: "alice", scope: "write" })
    await authenticate.flush()

    const listed = await cli("tokens", "list", "--json")
    const [row] = JSON.parse(listed.out)
    expect(row).toMatchObject({ ownerId: "alice", scope: "write", label: "ci", revokedAt: null, lastUsedAt: expect.any(String) })
    expect(listed.out).not.toContain(token)

    expect((await cli("tokens", "revoke", row.tokenId)).code).toBe(0)
    expect(await Effect.runPromise(authenticate(token))).toEqual(Either.left("revoked"))
    expect((await cli("tokens", "revoke", "0000000000000000")).code).toBe(1)

    const admin = await cli("tokens", "create", "--admin", "--json")
    expect(JSON.parse(admin.out)).toMatchObject({ ownerId: null, scope: "admin" })
    const owners = await cli("owners", "list", "--json")
    expect(JSON.parse(owners.out)).toEqual([expect.objectContaining({ ownerId: "alice", name: "Alice", activeTokens: 0 })])
  })
})
