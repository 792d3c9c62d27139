import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { asOwner } from "../../src/api/rest/apiContext.js"
import { makeMemoryInbox } from "../../src/actors/memoryInbox.js"
import { TAG_FIELD, tagRequestOf } from "../../src/actors/decider/userTags.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import { useMigratedDatabase } from "../support/db.js"
import { chatFacts, makeTokens, project, seedBot, startTestApi } from "./restSupport.js"
import type { TestApi } from "./restSupport.js"

/*
 * Broadcasts and user tags over the REST API: create, list (cursor paging), get with progress,
 * pause/resume/cancel with typed refusals, bad input that changes nothing, and the leak probes:
 * alice's tokens pointed at bob's bot and bob's broadcast get 404 and change nothing, and a route
 * without any owner filter still shows alice only her broadcasts and their recipients (row-level
 * security on broadcasts, sql/0135).
 */

const sqlOf = useMigratedDatabase("rest_broadcasts")
const log = makeMemoryEventLog({ partitions: 2 })
const inbox = makeMemoryInbox()
let api: TestApi
let tokens: Awaited<ReturnType<typeof makeTokens>>
let dataDir: string

beforeAll(async () => {
  const sql = sqlOf()
  dataDir = await mkdtemp(join(tmpdir(), "bf-rest-broadcasts-"))
  await seedBot(log, "alice-bot", chatFacts("alice", "a", 100))
  await seedBot(log, "bob-bot", chatFacts("bob", "b", 200))
  await project(log, sql, 2)
  tokens = await makeTokens(sql)
  api = await startTestApi({
    sql, log, dataDir, partitions: 2, inbox,
    // deliberately without any WHERE: what would leak without row-level security
    extra: (deps) => async (app) => {
      app.get("/leaky-broadcasts", { config: { access: "read" } }, async (req) =>
        asOwner(deps, req, async (tx) => ({
          broadcasts: (await tx.query("SELECT broadcast_id, owner_id, text FROM broadcasts ORDER BY broadcast_id")).rows,
          recipients: (await tx.query("SELECT broadcast_id, user_id FROM broadcast_recipients ORDER BY broadcast_id, seq")).rows
        })))
    }
  })
})
afterAll(async () => {
  await api?.app.close()
  await rm(dataDir, { recursive: true, force: true })
})

const create = (bot: string, token: string, body: unknown) => api.call("POST", `/api/v1/bots/${bot}/broadcasts`, token, body)

describe("broadcasts over the REST API", () => {
  it("creates a broadcast, shows its progress, pages the list, and pauses, resumes and cancels it", async () => {
    const at = "2030-01-01T09:00:00.000Z"
    const made = await create("alice-bot", tokens.aliceWrite, { segment: "all", text: "Sale today", at })
    expect(made.status).toBe(201)
    expect(made.body).toMatchObject({ botId: "alice-bot", text: "Sale today", segment: "all", state: "running", notBefore: at })
    expect(made.body.progress).toEqual({ total: 2, queued: 0, sent: 0, failed: 0, blocked: 0, skippedBlocked: 0, pending: 2 })
    const id = made.body.broadcastId

    const got = await api.call("GET", `/api/v1/broadcasts/${id}`, tokens.aliceRead)
    expect([got.status, got.body.progress.pending]).toEqual([200, 2])

    const second = await create("alice-bot", tokens.aliceWrite, { segment: "seen>1d, messages>=1", text: "second" })
    expect(second.status).toBe(201)
    const page1 = await api.call("GET", "/api/v1/bots/alice-bot/broadcasts?limit=1", tokens.aliceRead)
    expect(page1.body.items.map((b: { broadcastId: number }) => b.broadcastId)).toEqual([id])
    const page2 = await api.call("GET", `/api/v1/bots/alice-bot/broadcasts?limit=1&cursor=${page1.body.nextCursor}`, tokens.aliceRead)
    expect(page2.body.items.map((b: { broadcastId: number }) => b.broadcastId)).toEqual([second.body.broadcastId])
    expect(page2.body.nextCursor).toBeNull()

    const paused = await api.call("POST", `/api/v1/broadcasts/${id}/pause`, tokens.aliceWrite)
    expect([paused.status, paused.body.state]).toEqual([200, "paused"])
    const again = await api.call("POST", `/api/v1/broadcasts/${id}/pause`, tokens.aliceWrite)
    expect([again.status, again.body.error.code]).toEqual([409, "refused"])
    expect(again.body.error.message).toMatch(/it is paused, so it cannot pause; nothing was changed/)
    expect((await api.call("POST", `/api/v1/broadcasts/${id}/resume`, tokens.aliceWrite)).body.state).toBe("running")
    expect((await api.call("POST", `/api/v1/broadcasts/${id}/cancel`, tokens.aliceWrite)).body.state).toBe("cancelled")
    expect((await api.call("POST", `/api/v1/broadcasts/${id}/resume`, tokens.aliceWrite)).status).toBe(409)
    expect((await api.call("GET", `/api/v1/broadcasts/${id}`, tokens.aliceRead)).body.state).toBe("cancelled")
  })

  it("refuses bad input with a typed error and creates nothing", async () => {
    const count = async () => Number((await sqlOf().query("SELECT count(*) AS n FROM broadcasts")).rows[0]!["n"])
    const before = await count()
    const bad = await create("alice-bot", tokens.aliceWrite, { segment: "lang=de", text: "x" })
    expect([bad.status, bad.body.error.code]).toEqual([400, "invalid_request"])
    expect(bad.body.error.message).toMatch(/"lang=de" is not a segment term/)
    const badTag = await create("alice-bot", tokens.aliceWrite, { segment: "tag=V I P", text: "x" })
    expect([badTag.status, badTag.body.error.message]).toEqual([400, expect.stringMatching(/is not a tag/)])
    const nobody = await create("alice-bot", tokens.aliceWrite, { segment: "language=zz", text: "x" })
    expect([nobody.status, nobody.body.error.code]).toEqual([409, "refused"])
    expect((await create("alice-bot", tokens.aliceWrite, { segment: "all", text: "x".repeat(4097) })).status).toBe(400)
    expect((await create("alice-bot", tokens.aliceWrite, { segment: "all", text: "x", at: "tomorrow" })).status).toBe(400)
    expect((await api.call("GET", "/api/v1/broadcasts/0", tokens.aliceRead)).status).toBe(400)
    expect((await api.call("GET", "/api/v1/bots/alice-bot/broadcasts?cursor=nonsense!", tokens.aliceRead)).status).toBe(400)
    // a read token cannot create or control
    expect((await create("alice-bot", tokens.aliceRead, { segment: "all", text: "x" })).status).toBe(403)
    expect((await api.call("POST", "/api/v1/broadcasts/1/pause", tokens.aliceRead)).status).toBe(403)
    expect(await count()).toBe(before)
    expect((await api.call("GET", "/api/v1/broadcasts/999999", tokens.aliceRead)).body.error.code).toBe("not_found")
  })

  it("gives owner A 404 for owner B's bot and broadcasts, changes nothing of B's, and a handler without any owner filter still shows A only A's rows", async () => {
    const bobs = await create("bob-bot", tokens.bobWrite, { segment: "all", text: "bob's news" })
    expect(bobs.status).toBe(201)
    const id = bobs.body.broadcastId
    const probes = [
      ["POST", "/api/v1/bots/bob-bot/broadcasts", tokens.aliceWrite, { segment: "all", text: "pwned" }],
      ["GET", "/api/v1/bots/bob-bot/broadcasts", tokens.aliceRead, undefined],
      ["GET", `/api/v1/broadcasts/${id}`, tokens.aliceRead, undefined],
      ["POST", `/api/v1/broadcasts/${id}/pause`, tokens.aliceWrite, undefined],
      ["POST", `/api/v1/broadcasts/${id}/cancel`, tokens.aliceWrite, undefined],
      ["POST", "/api/v1/bots/bob-bot/users/200/tags", tokens.aliceWrite, { tag: "vip" }],
      ["DELETE", "/api/v1/bots/bob-bot/users/200/tags/vip", tokens.aliceWrite, undefined],
      ["GET", "/api/v1/bots/bob-bot/users/200/tags", tokens.aliceRead, undefined]
    ] as const
    for (const [method, url, token, body] of probes) {
      const r = await api.call(method, url, token, body)
      expect([r.status, r.body.error.code], `${method} ${url}`).toEqual([404, "not_found"])
      expect(JSON.stringify(r.body)).not.toMatch(/bob's news|b-Ada/)
    }
    expect((await api.call("GET", `/api/v1/broadcasts/${id}`, tokens.bobWrite)).body).toMatchObject({ state: "running", progress: { total: 2 } })
    expect(await Effect.runPromise(inbox.lag("bob-bot", null, 10))).toBe(0)

    const alice = (await api.call("GET", "/api/v1/leaky-broadcasts", tokens.aliceRead)).body
    expect(alice.broadcasts.length).toBeGreaterThan(0)
    expect(new Set(alice.broadcasts.map((b: { owner_id: string }) => b.owner_id))).toEqual(new Set(["alice"]))
    expect(alice.recipients.every((r: { user_id: string }) => Number(r.user_id) < 200)).toBe(true)
    const bob = (await api.call("GET", "/api/v1/leaky-broadcasts", tokens.bobWrite)).body
    expect(bob.broadcasts.map((b: { text: string }) => b.text)).toEqual(["bob's news"])
    expect(bob.recipients.map((r: { user_id: string }) => Number(r.user_id))).toEqual([200, 201])
  })

  it("puts a tag request into the bot's inbox (202), refuses a bad tag, and documents every route in OpenAPI", async () => {
    const tagged = await api.call("POST", "/api/v1/bots/alice-bot/users/100/tags", tokens.aliceWrite, { tag: "VIP" })
    expect([tagged.status, tagged.body]).toEqual([202, { botId: "alice-bot", userId: 100, tag: "vip", tagged: true, queued: true }])
    const untagged = await api.call("DELETE", "/api/v1/bots/alice-bot/users/100/tags/gold", tokens.aliceWrite)
    expect([untagged.status, untagged.body.tagged]).toEqual([202, false])
    const entries = await Effect.runPromise(inbox.readAfter("alice-bot", null, 10))
    expect(entries.map((e) => tagRequestOf(e.update))).toMatchObject([{ userId: 100, tag: "vip", on: true }, { userId: 100, tag: "gold", on: false }])
    expect(entries.every((e) => TAG_FIELD in (e.update as object))).toBe(true)

    const bad = await api.call("POST", "/api/v1/bots/alice-bot/users/100/tags", tokens.aliceWrite, { tag: "no spaces" })
    expect([bad.status, bad.body.error.code]).toEqual([400, "invalid_request"])
    expect((await api.call("POST", "/api/v1/bots/alice-bot/users/-5/tags", tokens.aliceWrite, { tag: "vip" })).status).toBe(400)
    expect((await api.call("POST", "/api/v1/bots/alice-bot/users/100/tags", tokens.aliceRead, { tag: "vip" })).status).toBe(403)
    expect(await Effect.runPromise(inbox.lag("alice-bot", null, 10))).toBe(2)
    expect((await api.call("GET", "/api/v1/bots/alice-bot/users/100/tags", tokens.aliceRead)).body).toEqual({ userId: 100, tags: [] })

    const doc = (await api.call("GET", "/openapi.json", null)).body
    for (const path of ["/api/v1/bots/{botId}/broadcasts", "/api/v1/broadcasts/{broadcastId}", "/api/v1/broadcasts/{broadcastId}/cancel", "/api/v1/bots/{botId}/users/{userId}/tags"]) {
      expect(doc.paths[path], path).toBeDefined()
    }
  })
})
