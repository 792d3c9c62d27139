import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import { openUserKeys, withSealing } from "../../src/privacy/sealingLog.js"
import { useMigratedDatabase } from "../support/db.js"
import { chatFacts, makeTokens, project, SECRET_KEY, seedBot, startTestApi } from "./restSupport.js"
import type { TestApi } from "./restSupport.js"

/*
 * DELETE /api/v1/bots/:bot/users/:user: an owner's write token forgets a user of one of their
 * bots (the same function as `botfleet users forget`); another owner's bot is a 404, exactly as
 * a bot that does not exist; a read token is refused; a user the bot never met is a 404 and a
 * malformed id a 400, neither changing anything.
 */

const sqlOf = useMigratedDatabase("rest_forget")
let api: TestApi
let tokens: Awaited<ReturnType<typeof makeTokens>>
let dataDir: string
let closeCache: () => void

beforeAll(async () => {
  const sql = sqlOf()
  dataDir = await mkdtemp(join(tmpdir(), "bf-rest-forget-"))
  // listening, as a node's cache does: the forget made through the API reaches it
  const { cache } = openUserKeys(sql, Buffer.from(SECRET_KEY, "base64"))
  closeCache = cache.close
  const log = withSealing(makeMemoryEventLog({ partitions: 2 }), cache)
  await seedBot(log, "alice-bot", chatFacts("alice", "a", 100))
  await seedBot(log, "bob-bot", chatFacts("bob", "b", 200))
  await project(log, sql, 2)
  tokens = await makeTokens(sql)
  api = await startTestApi({ sql, log, dataDir, partitions: 2, forgetSettleMs: 10, keyCache: cache })
})
afterAll(async () => {
  closeCache()
  await api?.app.close()
  await rm(dataDir, { recursive: true, force: true })
})

describe("DELETE /api/v1/bots/:bot/users/:user", () => {
  it("forgets the owner's user: their rows are gone, the other user's stay, and a second call changes nothing", async () => {
    const before = await api.call("GET", "/api/v1/bots/alice-bot/users", tokens.aliceRead)
    expect(before.status).toBe(200)
    expect(JSON.stringify(before.body)).toContain("a-Ada")

    expect((await api.call("DELETE", "/api/v1/bots/alice-bot/users/100", tokens.aliceRead)).status).toBe(403)
    const r = await api.call("DELETE", "/api/v1/bots/alice-bot/users/100", tokens.aliceWrite)
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({ botId: "alice-bot", userId: 100, alreadyForgotten: false, clearTextEvents: 0, purged: { bot_users: 1, chats: 1 } })
    expect(r.body.purged.messages).toBeGreaterThanOrEqual(4)

    const after = JSON.stringify((await api.call("GET", "/api/v1/bots/alice-bot/users", tokens.aliceRead)).body)
    expect(after).not.toContain("a-Ada")
    expect(after).toContain("a-Grace")
    // the events endpoint reads the log through the same opening: the user's texts are [erased]
    const events = await api.call("GET", "/api/v1/bots/alice-bot/events", tokens.aliceRead)
    expect(events.status).toBe(200)
    expect(JSON.stringify(events.body)).not.toContain("hello from a-Ada")
    expect(JSON.stringify(events.body)).toContain("[erased]")

    const again = await api.call("DELETE", "/api/v1/bots/alice-bot/users/100", tokens.aliceWrite)
    expect(again.body).toMatchObject({ alreadyForgotten: true, recordedAt: null })
  })

  it("answers 404 for another owner's bot and for a user the bot never met, 400 for an id that is not one", async () => {
    const other = await api.call("DELETE", "/api/v1/bots/bob-bot/users/200", tokens.aliceWrite)
    expect(other.status).toBe(404)
    expect(other.body.error.code).toBe("not_found")
    const stranger = await api.call("DELETE", "/api/v1/bots/alice-bot/users/999", tokens.aliceWrite)
    expect(stranger.status).toBe(404)
    expect(stranger.body.error.message).toContain("no user 999")
    const bad = await api.call("DELETE", "/api/v1/bots/alice-bot/users/ada", tokens.aliceWrite)
    expect(bad.status).toBe(400)
    // bob's user is untouched
    const bobUsers = await api.call("GET", "/api/v1/bots/bob-bot/users", tokens.bobWrite)
    expect(JSON.stringify(bobUsers.body)).toContain("b-Ada")
  })
})
