import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Validator } from "@seriousme/openapi-schema-validator"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import { useMigratedDatabase } from "../support/db.js"
import { chatFacts, makeTokens, project, seedBot, startTestApi } from "./restSupport.js"
import type { TestApi } from "./restSupport.js"

/* What the REST API answers: pages, search, a user's messages, analytics, events, changes, ops, OpenAPI, rate limits. */

const sqlOf = useMigratedDatabase("rest_endpoints")
const log = makeMemoryEventLog({ partitions: 2 })
let api: TestApi
let tokens: Awaited<ReturnType<typeof makeTokens>>
let dataDir: string

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "bf-rest-endpoints-"))
  await seedBot(log, "alice-bot", chatFacts("alice", "a", 100))
  await project(log, sqlOf(), 2)
  tokens = await makeTokens(sqlOf())
  api = await startTestApi({ sql: sqlOf(), log, dataDir, partitions: 2 })
})
afterAll(async () => {
  await api?.app.close()
  await rm(dataDir, { recursive: true, force: true })
})

describe("REST API endpoints", () => {
  it("pages with cursors and searches users by name", async () => {
    const first = await api.call("GET", "/api/v1/bots/alice-bot/users?limit=1", tokens.aliceRead)
    expect(first.body.items.map((u: { userId: number }) => u.userId)).toEqual([100])
    expect(first.body.nextCursor).toEqual(expect.any(String))
    const second = await api.call("GET", `/api/v1/bots/alice-bot/users?limit=1&cursor=${first.body.nextCursor}`, tokens.aliceRead)
    expect([second.body.items.map((u: { userId: number }) => u.userId), second.body.nextCursor]).toEqual([[101], null])
    const found = await api.call("GET", "/api/v1/bots/alice-bot/users?q=grace", tokens.aliceRead)
    expect(found.body.items).toEqual([expect.objectContaining({ userId: 101, firstName: "a-Grace", messagesIn: 1 })])
    const bad = await api.call("GET", "/api/v1/bots/alice-bot/users?cursor=bm90LWEtY3Vyc29y", tokens.aliceRead)
    expect([bad.status, bad.body.error.code]).toEqual([400, "invalid_request"])
    const badLimit = await api.call("GET", "/api/v1/bots?limit=100000", tokens.aliceRead)
    expect([badLimit.status, badLimit.body.error.code]).toEqual([400, "invalid_request"])
  })

  it("shows a user's messages newest first, and a chat's conversation", async () => {
    const r = await api.call("GET", "/api/v1/bots/alice-bot/users/100/messages", tokens.aliceRead)
    expect(r.body.items.map((m: { direction: string; text: string }) => `${m.direction} ${m.text}`)).toEqual([
      "out hi a-Ada", "in hello from a-Ada", "out hi a-Ada", "in hello from a-Ada"
    ])
    const chats = await api.call("GET", "/api/v1/bots/alice-bot/chats", tokens.aliceRead)
    expect(chats.body.items.map((c: { chatId: number }) => c.chatId)).toEqual([101, 100])
  })

  it("computes the analytics: messages per day, new vs returning, weekly actives, reply latency, retention cohorts", async () => {
    const r = await api.call("GET", "/api/v1/bots/alice-bot/analytics?from=2026-11-01&to=2026-11-30", tokens.aliceRead)
    expect(r.status).toBe(200)
    expect(r.body.days).toEqual([
      { day: "2026-11-02", messagesIn: 1, messagesOut: 1, activeUsers: 1, newUsers: 1, returningUsers: 0 },
      { day: "2026-11-10", messagesIn: 2, messagesOut: 2, activeUsers: 2, newUsers: 1, returningUsers: 1 }
    ])
    // 2026-11-02 and 2026-11-09 are Mondays
    expect(r.body.weeklyActiveUsers).toEqual([{ week: "2026-11-02", users: 1 }, { week: "2026-11-09", users: 2 }])
    expect(r.body.replyLatencyMs).toEqual({ replies: 3, p50: 2000, p90: 2000, p99: 2000 })
    expect(r.body.retention).toEqual([
      { cohortWeek: "2026-11-02", users: 1, activeByWeek: [1, 1] },
      { cohortWeek: "2026-11-09", users: 1, activeByWeek: [1] }
    ])
    const bad = await api.call("GET", "/api/v1/bots/alice-bot/analytics?from=2026-12-01&to=2026-11-01", tokens.aliceRead)
    expect([bad.status, bad.body.error.code]).toEqual([400, "invalid_request"])
  })

  it("pages a bot's events, redacted as tail --json redacts", async () => {
    const r = await api.call("GET", "/api/v1/bots/alice-bot/events?limit=2", tokens.aliceRead)
    expect(r.body.items.map((e: { version: number; type: string }) => [e.version, e.type])).toEqual([[1, "BotRegistered"], [2, "UserSeen"]])
    expect(r.body.items[0].data.tokenCiphertext).toBe("[redacted]")
    const next = await api.call("GET", `/api/v1/bots/alice-bot/events?limit=100&cursor=${r.body.nextCursor}`, tokens.aliceRead)
    expect(next.body.items[0].version).toBe(3)
    expect(next.body.nextCursor).toBeNull()
  })

  it("configures a bot against its kind's schema (422 with every problem, nothing recorded), stops and lists it again", async () => {
    const before = await Effect.runPromise(log.streamVersion("alice-bot"))
    const refused = await api.call("PATCH", "/api/v1/bots/alice-bot/config", tokens.aliceWrite, { greeting: "", greating: "typo" })
    expect([refused.status, refused.body.error.code]).toEqual([422, "config_invalid"])
    expect(refused.body.error.problems.map((p: { path: string }) => p.path).sort()).toEqual(["greating", "greeting"])
    expect(await Effect.runPromise(log.streamVersion("alice-bot"))).toBe(before)
    // named by its username: the same bot changes
    const ok = await api.call("PATCH", "/api/v1/bots/@a_fixture_bot/config", tokens.aliceWrite, { greeting: "Welcome, {name}!" })
    expect([ok.status, ok.body.botId, ok.body.events, ok.body.version]).toEqual([200, "alice-bot", ["BotConfigChanged"], before + 1])
    const events = await Effect.runPromise(log.readStream("alice-bot", { from: before + 1 }))
    expect(events[0]!.actor).toMatch(/^owner:alice:api:[0-9a-f]{16}$/)
    await sqlOf().query("INSERT INTO fleet_bots (bot_id) VALUES ('alice-bot') ON CONFLICT DO NOTHING")
    // never started: nothing to record, but it is unlisted (nodes no longer start it)
    const stopped = await api.call("POST", "/api/v1/bots/alice-bot/stop", tokens.aliceWrite, { reason: "holiday" })
    expect([stopped.status, stopped.body.botId]).toEqual([200, "alice-bot"])
    expect((await sqlOf().query("SELECT bot_id FROM fleet_bots")).rows).toEqual([])
    const started = await api.call("POST", "/api/v1/bots/a_fixture_bot/start", tokens.aliceWrite)
    expect(started.body).toEqual({ botId: "alice-bot", listed: true })
    const { rows } = await sqlOf().query("SELECT bot_id FROM fleet_bots")
    expect(rows).toEqual([{ bot_id: "alice-bot" }])
  })

  it("names a bot by id or name, and refuses a name two of the owner's bots share (409 ambiguous_bot)", async () => {
    await seedBot(log, "alice-twin", chatFacts("alice", "a", 300))
    await project(log, sqlOf(), 2)
    const shared = await api.call("GET", "/api/v1/bots/@a_fixture_bot/users", tokens.aliceRead)
    expect([shared.status, shared.body.error.code]).toEqual([409, "ambiguous_bot"])
    expect(shared.body.error.message).toContain("name the bot by its id")
    const byId = await api.call("GET", "/api/v1/bots/alice-twin/users", tokens.aliceRead)
    expect(byId.body.items.map((u: { userId: number }) => u.userId)).toEqual([300, 301])
    expect((await api.call("GET", "/api/v1/bots/@nobody_bot", tokens.aliceRead)).status).toBe(404)
    await sqlOf().query("DELETE FROM bots WHERE bot_id = 'alice-twin'")
  })

  it("answers ops routes for admin tokens: fleet status, dead letters, audit verify", async () => {
    const status = await api.call("GET", "/api/v1/fleet/status", tokens.admin)
    expect(status.status).toBe(200)
    expect(status.body.bots.map((b: { botId: string }) => b.botId)).toEqual(["alice-bot"])
    expect(status.body.partitions).toHaveLength(2)
    expect((await api.call("GET", "/api/v1/dead-letters", tokens.admin)).body).toEqual({ items: [] })
    const missing = await api.call("POST", "/api/v1/dead-letters/1/5-0/retry", tokens.admin)
    expect([missing.status, missing.body.error.code]).toEqual([404, "not_found"])
    const audit = await api.call("POST", "/api/v1/audit/verify", tokens.admin)
    expect([audit.status, audit.body.ok]).toEqual([200, true])
  })

  it("serves an OpenAPI 3.1 document a validator accepts, and the docs page", async () => {
    const doc = await api.app.inject({ method: "GET", url: "/openapi.json" })
    expect(doc.statusCode).toBe(200)
    const spec = JSON.parse(doc.body)
    expect(spec.openapi).toBe("3.1.0")
    const result = await new Validator().validate(spec)
    expect(result.errors ?? []).toEqual([])
    expect(result.valid).toBe(true)
    expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(["/api/v1/bots", "/api/v1/bots/{botId}/analytics", "/api/v1/fleet/status"]))
    const page = await api.app.inject({ method: "GET", url: "/docs/" })
    expect(page.statusCode).toBe(200)
    expect(page.body).toContain("swagger")
  })

  it("limits requests per token (429 rate_limited), other tokens unaffected", async () => {
    const limited = await startTestApi({ sql: sqlOf(), log, dataDir, partitions: 2, rateLimitPerMinute: 3 })
    try {
      for (let i = 0; i < 3; i++) expect((await limited.call("GET", "/api/v1/bots", tokens.aliceRead)).status).toBe(200)
      const r = await limited.call("GET", "/api/v1/bots", tokens.aliceRead)
      expect([r.status, r.body.error.code]).toEqual([429, "rate_limited"])
      expect((await limited.call("GET", "/api/v1/bots", tokens.aliceWrite)).status).toBe(200)
    } finally {
      await limited.app.close()
    }
  })
})
