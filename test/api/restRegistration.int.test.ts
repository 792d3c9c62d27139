import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { useMigratedDatabase } from "../support/db.js"
import { makeTokens, project, startTestApi } from "./restSupport.js"
import type { TestApi } from "./restSupport.js"

/*
 * Registering a bot and rotating its token over the API, against the Bot API sandbox: the token
 * is checked with getMe, stored sealed, and never comes back in an answer, an event or a log line.
 */

const sqlOf = useMigratedDatabase("rest_registration")
const log = makeMemoryEventLog({ partitions: 2 })
let api: TestApi
let sandbox: Sandbox
let tokens: Awaited<ReturnType<typeof makeTokens>>
let dataDir: string

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "bf-rest-registration-"))
  sandbox = await startSandbox({ port: 0 })
  tokens = await makeTokens(sqlOf())
  api = await startTestApi({ sql: sqlOf(), log, dataDir, partitions: 2, env: { TELEGRAM_API_ROOT: sandbox.apiRoot } })
})
afterAll(async () => {
  await api?.app.close()
  await sandbox?.close()
  await rm(dataDir, { recursive: true, force: true })
})

describe("registering bots over the API", () => {
  it("registers a bot for the token's owner, sealed; refuses a taken id, a bad token, another bot's token on rotation", async () => {
    const shop = sandbox.world.createBot({ username: "shop_bot" })
    const added = await api.call("POST", "/api/v1/bots", tokens.aliceWrite, { botId: "shop", token: shop.token })
    expect([added.status, added.body]).toEqual([201, { botId: "shop", username: "shop_bot", telegramId: shop.id }])
    const again = await api.call("POST", "/api/v1/bots", tokens.bobWrite, { botId: "shop", token: shop.token })
    expect([again.status, again.body.error.code]).toEqual([409, "bot_exists"])
    const bad = await api.call("POST", "/api/v1/bots", tokens.aliceWrite, { botId: "other", token: "123456:not-a-real-token-at-all-here-xx" })
    expect([bad.status, bad.body.error.code]).toEqual([422, "bot_token_invalid"])
    expect(await Effect.runPromise(log.streamVersion("other"))).toBe(0)

    await project(log, sqlOf(), 2)
    const listed = await api.call("GET", "/api/v1/bots", tokens.aliceRead)
    expect(listed.body.items.map((b: { botId: string; name: string }) => [b.botId, b.name])).toEqual([["shop", "shop_bot"]])
    expect((await api.call("GET", "/api/v1/bots", tokens.bobWrite)).body.items).toEqual([])

    const stranger = sandbox.world.createBot({ username: "stranger_bot" })
    const wrong = await api.call("POST", "/api/v1/bots/shop/rotate-token", tokens.aliceWrite, { token: stranger.token })
    expect([wrong.status, wrong.body.error.code]).toEqual([422, "bot_token_invalid"])
    const events = await Effect.runPromise(log.readStream("shop", { from: 1 }))
    expect(events.map((e) => e.data._tag)).toEqual(["BotRegistered"])
    const everything = JSON.stringify({ events, lines: api.lines, added: added.body, wrong: wrong.body, listed: listed.body })
    for (const secret of [shop.token, stranger.token]) expect(everything).not.toContain(secret)
  })
})
