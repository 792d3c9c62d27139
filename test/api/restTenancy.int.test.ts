import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { revokeToken } from "../../src/api/auth/apiTokens.js"
import { asOwner } from "../../src/api/rest/apiContext.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import { useMigratedDatabase } from "../support/db.js"
import { chatFacts, makeTokens, project, seedBot, startTestApi } from "./restSupport.js"
import type { TestApi } from "./restSupport.js"

/*
 * Tenancy is the database's: every owner route runs as botfleet_api with app.owner_id set, so
 * row-level security decides. Alice's tokens are pointed at every route with bob's ids; a route
 * written without any owner filter (the `leaky` one below, as every handler is) still shows
 * alice nothing of bob's. And the doors: forged, expired, revoked tokens (401), read tokens on
 * write routes and owner tokens on ops routes (403).
 */

const sqlOf = useMigratedDatabase("rest_tenancy")
const log = makeMemoryEventLog({ partitions: 2 })
let api: TestApi
let tokens: Awaited<ReturnType<typeof makeTokens>>
let dataDir: string

beforeAll(async () => {
  const sql = sqlOf()
  dataDir = await mkdtemp(join(tmpdir(), "bf-rest-tenancy-"))
  await seedBot(log, "alice-bot", chatFacts("alice", "a", 100))
  await seedBot(log, "bob-bot", chatFacts("bob", "b", 200))
  await project(log, sql, 2)
  tokens = await makeTokens(sql)
  api = await startTestApi({
    sql, log, dataDir, partitions: 2,
    // deliberately missing WHERE owner_id (and WHERE bot_id): what would leak without row-level security
    extra: (deps) => async (app) => {
      app.get("/leaky", { config: { access: "read" } }, async (req) => asOwner(deps, req, async (tx) => (await tx.query("SELECT bot_id, owner_id, text FROM messages ORDER BY bot_id, version")).rows))
    }
  })
})
afterAll(async () => {
  await api?.app.close()
  await rm(dataDir, { recursive: true, force: true })
})

/** Every owner route, with bob's ids where they take one. */
const BOB = {
  reads: [
    "/api/v1/bots/bob-bot",
    "/api/v1/bots/bob-bot/users",
    "/api/v1/bots/bob-bot/users?q=Ada",
    "/api/v1/bots/bob-bot/chats",
    "/api/v1/bots/bob-bot/users/200/messages",
    "/api/v1/bots/bob-bot/chats/200/messages",
    "/api/v1/bots/bob-bot/events",
    "/api/v1/bots/bob-bot/analytics?from=2026-11-01&to=2026-11-30"
  ],
  writes: [
    ["PATCH", "/api/v1/bots/bob-bot/config", { greeting: "pwned" }],
    ["POST", "/api/v1/bots/bob-bot/start", undefined],
    ["POST", "/api/v1/bots/bob-bot/stop", {}],
    ["DELETE", "/api/v1/bots/bob-bot", {}],
    ["POST", "/api/v1/bots/bob-bot/rotate-token", { token: "123456:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }]
  ] as const
}

describe("REST API tenancy (row-level security decides)", () => {
  it("owner A sees its own rows through every read route", async () => {
    const list = await api.call("GET", "/api/v1/bots", tokens.aliceRead)
    expect(list.status).toBe(200)
    expect(list.body.items.map((b: { botId: string }) => b.botId)).toEqual(["alice-bot"])
    // by id, and by name (the Telegram username it was registered under) with and without the @
    for (const ref of ["alice-bot", "@a_fixture_bot", "a_fixture_bot", "A_Fixture_Bot"]) {
      for (const url of BOB.reads) {
        const mine = await api.call("GET", url.replace(/bob-bot/g, ref).replace(/\/200\//, "/100/").replace("Ada", "a-Ada"), tokens.aliceRead)
        expect(mine.status, `${ref}: ${url}`).toBe(200)
      }
    }
    const byName = await api.call("GET", "/api/v1/bots/@a_fixture_bot", tokens.aliceRead)
    expect(byName.body).toMatchObject({ botId: "alice-bot", name: "a_fixture_bot" })
    const users = await api.call("GET", "/api/v1/bots/alice-bot/users", tokens.aliceRead)
    expect(users.body.items.map((u: { firstName: string }) => u.firstName)).toEqual(["a-Ada", "a-Grace"])
  })

  it("owner A gets 404 for every route given owner B's ids, and the changes change nothing", async () => {
    const before = await Effect.runPromise(log.streamVersion("bob-bot"))
    // bob's bot by its id or its name: the same 404 as a bot that does not exist
    for (const ref of ["bob-bot", "@b_fixture_bot", "b_fixture_bot"]) {
      for (const url of BOB.reads) {
        const r = await api.call("GET", url.replace(/bob-bot/g, ref), tokens.aliceRead)
        expect(r.status, `${ref}: ${url}`).toBe(404)
        expect(r.body.error.code, url).toBe("not_found")
        expect(JSON.stringify(r.body)).not.toMatch(/b-Ada|b-Grace|hello from b/)
      }
      for (const [method, url, body] of BOB.writes) {
        const r = await api.call(method, url.replace(/bob-bot/g, ref), tokens.aliceWrite, body)
        expect(r.status, `${ref}: ${method} ${url}`).toBe(404)
        expect(r.body.error.code).toBe("not_found")
      }
    }
    expect(await Effect.runPromise(log.streamVersion("bob-bot"))).toBe(before)
  })

  it("a handler without any owner filter still shows each owner only its own rows", async () => {
    const alice = await api.call("GET", "/api/v1/leaky", tokens.aliceRead)
    expect(alice.status).toBe(200)
    expect(alice.body.length).toBe(6)
    expect(new Set(alice.body.map((r: { owner_id: string }) => r.owner_id))).toEqual(new Set(["alice"]))
    const bob = await api.call("GET", "/api/v1/leaky", tokens.bobWrite)
    expect(new Set(bob.body.map((r: { owner_id: string }) => r.owner_id))).toEqual(new Set(["bob"]))
  })

  it("refuses missing, forged, expired and revoked tokens with 401, and logs the token id, never the token", async () => {
    const url = "/api/v1/bots"
    expect((await api.call("GET", url, null)).status).toBe(401)
    expect((await api.call("GET", url, "not-a-token")).body.error.code).toBe("unauthorized")
    // the right id with another secret
    const forged = tokens.aliceRead.slice(0, -4) + (tokens.aliceRead.endsWith("AAAA") ? "BBBB" : "AAAA")
    expect((await api.call("GET", url, forged)).status).toBe(401)
    const expired = await tokens.make("alice", "write", new Date(Date.now() - 1000))
    const e = await api.call("GET", url, expired.token)
    expect([e.status, e.body.error.message]).toEqual([401, "the API token has expired"])
    const revoked = await tokens.make("alice", "write")
    expect((await api.call("GET", url, revoked.token)).status).toBe(200)
    await Effect.runPromise(revokeToken(sqlOf(), revoked.tokenId))
    // the node believes a token it checked for API_TOKEN_CACHE_SECONDS (5 s here), not longer
    api.advanceClock(5_000)
    const r = await api.call("GET", url, revoked.token)
    expect([r.status, r.body.error.message]).toEqual([401, "the API token was revoked"])
    expect((await api.call("GET", url, revoked.token)).status).toBe(401)
    expect(r.headers["cache-control"]).toBe("no-store")
    const logged = JSON.stringify(api.lines)
    expect(logged).toContain(revoked.tokenId)
    expect(logged).not.toContain(revoked.token)
    expect(logged).not.toContain(tokens.aliceRead)
  })

  it("refuses read tokens on write routes and owner tokens on ops routes with 403; admin tokens on owner routes too", async () => {
    const before = await Effect.runPromise(log.streamVersion("alice-bot"))
    for (const [method, url, body] of BOB.writes) {
      const r = await api.call(method, url.replace("bob-bot", "alice-bot"), tokens.aliceRead, body)
      expect([r.status, r.body.error.code], `${method} ${url}`).toEqual([403, "forbidden"])
    }
    expect(await Effect.runPromise(log.streamVersion("alice-bot"))).toBe(before)
    for (const [method, url] of [["GET", "/api/v1/fleet/status"], ["GET", "/api/v1/dead-letters"], ["POST", "/api/v1/audit/verify"], ["POST", "/api/v1/dead-letters/0/1-0/retry"]] as const) {
      expect((await api.call(method, url, tokens.aliceWrite)).status, url).toBe(403)
    }
    const asAdmin = await api.call("GET", "/api/v1/bots", tokens.admin)
    expect([asAdmin.status, asAdmin.body.error.code]).toEqual([403, "owner_token_required"])
  })

  it("records when a token was last used", async () => {
    await api.authenticate.flush()
    const { rows } = await sqlOf().query<{ n: number }>("SELECT count(*)::int AS n FROM api_tokens WHERE last_used_at IS NOT NULL")
    expect(rows[0]!.n).toBeGreaterThanOrEqual(3)
  })
})
