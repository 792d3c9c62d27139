import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, Either } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { apiRootFor, callBotApi, isIdempotentMethod, makeBotApi } from "../../src/telegram/botApi.js"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"

let sandbox: Sandbox
beforeAll(async () => {
  sandbox = await startSandbox()
})
afterAll(async () => {
  await sandbox.close()
})

const either = <A, E>(e: Effect.Effect<A, E>) => Effect.runPromise(Effect.either(e))

describe("Bot API client", () => {
  it("calls any method by name and returns its result", async () => {
    const bot = sandbox.world.createBot({ username: "client_bot" })
    const api = makeBotApi(bot.token, { apiRoot: sandbox.apiRoot })
    expect(await Effect.runPromise(api.call("getMe"))).toMatchObject({ username: "client_bot" })
  })

  it("sorts failures into refused, rate limited and unavailable, with retryability in the type", async () => {
    const bot = sandbox.world.createBot({ username: "errors_bot" })
    sandbox.world.say("errors_bot", { userId: 1, text: "hi" })
    const api = makeBotApi(bot.token, { apiRoot: sandbox.apiRoot })

    const notFound = await either(api.call("sendMessage", { chat_id: 999, text: "x" }))
    expect(Either.isLeft(notFound) && notFound.left).toMatchObject({ _tag: "TelegramRefused", errorCode: 400, description: "Bad Request: chat not found", retryable: false })

    sandbox.world.injectFaults("errors_bot", [{ errorCode: 429, retryAfter: 7 }, { errorCode: 502 }])
    const limited = await either(api.call("sendMessage", { chat_id: 1, text: "x" }))
    expect(Either.isLeft(limited) && limited.left).toMatchObject({ _tag: "RateLimited", retryAfterS: 7, retryable: true })
    const down = await either(api.call("sendMessage", { chat_id: 1, text: "x" }))
    expect(Either.isLeft(down) && down.left).toMatchObject({ _tag: "TelegramUnavailable", status: 502, retryable: "onlyIfIdempotent" })

    sandbox.world.block("errors_bot", 1)
    const blocked = await either(api.call("sendMessage", { chat_id: 1, text: "x" }))
    expect(Either.isLeft(blocked) && blocked.left._tag === "TelegramRefused" && blocked.left.blockedByUser).toBe(true)
  })

  it("reports a revoked token as refused 401 and a dead server as unavailable, never quoting the token", async () => {
    const bot = sandbox.world.createBot({ username: "revoked_bot" })
    sandbox.world.revoke("revoked_bot")
    const revoked = await either(callBotApi(bot.token, "getMe", {}, { apiRoot: sandbox.apiRoot }))
    expect(Either.isLeft(revoked) && revoked.left).toMatchObject({ _tag: "TelegramRefused", errorCode: 401 })
    const dead = await either(callBotApi(bot.token, "getMe", {}, { apiRoot: "http://127.0.0.1:1", timeoutMs: 2000 }))
    expect(Either.isLeft(dead) && dead.left._tag).toBe("TelegramUnavailable")
    const secretPart = bot.token.split(":")[1]!
    for (const r of [revoked, dead]) {
      if (Either.isLeft(r)) {
        expect(r.left.message).not.toContain(secretPart)
        expect(JSON.stringify(r.left)).not.toContain(secretPart)
      }
    }
  })

  it("gives up on a server that accepts the call and never answers, as unavailable (timed out), and on a non-JSON answer", async () => {
    const silent = createServer(() => undefined)
    const garbled = createServer((_req, res) => res.writeHead(502, { "content-type": "text/html" }).end("<html>bad gateway</html>"))
    await Promise.all([silent, garbled].map((s) => new Promise<void>((r) => s.listen(0, "127.0.0.1", r))))
    const rootOf = (s: typeof silent) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`
    try {
      const hung = await either(callBotApi("1:secret-token", "sendMessage", { chat_id: 1, text: "x" }, { apiRoot: rootOf(silent), timeoutMs: 300 }))
      expect(Either.isLeft(hung) && hung.left).toMatchObject({ _tag: "TelegramUnavailable", status: null, reason: "timed out" })
      const bad = await either(callBotApi("1:secret-token", "sendMessage", { chat_id: 1, text: "x" }, { apiRoot: rootOf(garbled) }))
      expect(Either.isLeft(bad) && bad.left).toMatchObject({ _tag: "TelegramUnavailable", status: 502, reason: "HTTP 502" })
    } finally {
      silent.closeAllConnections()
      await Promise.all([silent, garbled].map((s) => new Promise((r) => s.close(r))))
    }
  })

  it("takes the bot's API root over the fleet's over Telegram's", () => {
    expect(apiRootFor("http://bot", "http://fleet")).toBe("http://bot")
    expect(apiRootFor(null, "http://fleet")).toBe("http://fleet")
    expect(apiRootFor(undefined, undefined)).toBe("https://api.telegram.org")
  })

  it("retries only methods that cannot duplicate a message", () => {
    expect(isIdempotentMethod("getUpdates")).toBe(true)
    expect(isIdempotentMethod("setWebhook")).toBe(true)
    expect(isIdempotentMethod("editMessageText")).toBe(true)
    expect(isIdempotentMethod("sendChatAction")).toBe(true)
    expect(isIdempotentMethod("sendMessage")).toBe(false)
    expect(isIdempotentMethod("forwardMessage")).toBe(false)
    expect(isIdempotentMethod("copyMessage")).toBe(false)
    expect(isIdempotentMethod("sendPhoto")).toBe(false)
  })
})
