/* eslint-disable @typescript-eslint/no-explicit-any -- tests read Bot API answers as loose JSON */
import { createServer } from "node:http"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startSandbox } from "../../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../../src/telegram/sandbox/server.js"

/** Generous: the CI machine may be busy; polls end as soon as the condition holds. */
const POLL = { timeout: 15_000 }

let sandbox: Sandbox
beforeAll(async () => {
  sandbox = await startSandbox({ webhookRetryMs: 20 })
})
afterAll(async () => {
  await sandbox.close()
})

const call = async (token: string, method: string, params: Record<string, unknown> = {}) => {
  const res = await fetch(`${sandbox.apiRoot}/bot${token}/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(params)
  })
  return { status: res.status, body: (await res.json()) as { ok: boolean; result?: any; error_code?: number; description?: string; parameters?: { retry_after: number } } }
}

const post = async (path: string, body: unknown) => {
  const res = await fetch(`${sandbox.apiRoot}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
  return { status: res.status, body: (await res.json()) as any }
}

describe("Bot API sandbox", () => {
  it("answers getMe for a known token and 401 Unauthorized for an unknown one", async () => {
    const bot = sandbox.world.createBot({ username: "alpha_bot", firstName: "Alpha" })
    const me = await call(bot.token, "getMe")
    expect(me.body).toMatchObject({ ok: true, result: { is_bot: true, username: "alpha_bot", first_name: "Alpha" } })
    const bad = await call("123:nope", "getMe")
    expect(bad).toEqual({ status: 401, body: { ok: false, error_code: 401, description: "Unauthorized" } })
    expect((await call(bot.token, "noSuchMethod")).status).toBe(404)
  })

  it("hands a user's message to getUpdates, confirms it with the offset, and holds an empty long poll", async () => {
    const { body: created } = await post("/sandbox/bots", { username: "poll_bot" })
    await post("/sandbox/poll_bot/say", { userId: 42, text: "hello" })
    const first = await call(created.token, "getUpdates", { timeout: 0 })
    expect(first.body.result).toHaveLength(1)
    expect(first.body.result[0].message).toMatchObject({ text: "hello", chat: { id: 42, type: "private" }, from: { id: 42 } })
    const next = first.body.result[0].update_id + 1
    // a long poll with nothing pending answers when the next update arrives
    const waiting = call(created.token, "getUpdates", { offset: next, timeout: 5 })
    await new Promise((r) => setTimeout(r, 50))
    await post("/sandbox/poll_bot/say", { userId: 42, text: "again" })
    const second = await waiting
    expect(second.body.result.map((u: any) => u.message.text)).toEqual(["again"])
    expect(second.body.result[0].update_id).toBe(next)
  })

  it("sends messages into known chats, edits them, and lists them for the test", async () => {
    const bot = sandbox.world.createBot({ username: "send_bot" })
    expect((await call(bot.token, "sendMessage", { chat_id: 7, text: "hi" })).body).toEqual({ ok: false, error_code: 400, description: "Bad Request: chat not found" })
    sandbox.world.say("send_bot", { userId: 7, text: "/start" })
    const sent = await call(bot.token, "sendMessage", { chat_id: 7, text: "welcome" })
    expect(sent.body.result).toMatchObject({ text: "welcome", chat: { id: 7 }, from: { is_bot: true, username: "send_bot" } })
    expect((await call(bot.token, "sendMessage", { chat_id: 7, text: "" })).body.description).toBe("Bad Request: message text is empty")
    const edited = await call(bot.token, "editMessageText", { chat_id: 7, message_id: sent.body.result.message_id, text: "welcome!" })
    expect(edited.body.result.text).toBe("welcome!")
    const same = await call(bot.token, "editMessageText", { chat_id: 7, message_id: sent.body.result.message_id, text: "welcome!" })
    expect(same.body.description).toMatch(/message is not modified/)
    expect((await call(bot.token, "sendChatAction", { chat_id: 7, action: "typing" })).body.result).toBe(true)
    expect((await call(bot.token, "answerCallbackQuery", { callback_query_id: "abc" })).body.result).toBe(true)
    const listed = (await (await fetch(`${sandbox.apiRoot}/sandbox/send_bot/messages?chatId=7`)).json()) as any
    expect(listed.messages.map((m: any) => m.text)).toEqual(["welcome!"])
  })

  it("answers 403 once the user blocked the bot", async () => {
    const bot = sandbox.world.createBot({ username: "blocked_bot" })
    sandbox.world.say("blocked_bot", { userId: 9, text: "hi" })
    await post("/sandbox/blocked_bot/block", { userId: 9 })
    const res = await call(bot.token, "sendMessage", { chat_id: 9, text: "still there?" })
    expect(res).toEqual({ status: 403, body: { ok: false, error_code: 403, description: "Forbidden: bot was blocked by the user" } })
  })

  it("enforces the per-chat limit with 429 and retry_after", async () => {
    const bot = sandbox.world.createBot({ username: "fast_bot" })
    sandbox.world.say("fast_bot", { userId: 11, text: "go" })
    const statuses: number[] = []
    let limited: any
    for (let i = 0; i < 6; i++) {
      const r = await call(bot.token, "sendMessage", { chat_id: 11, text: `m${i}` })
      statuses.push(r.status)
      if (r.status === 429) limited = r.body
    }
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(3)
    expect(limited).toMatchObject({ ok: false, error_code: 429, parameters: { retry_after: 1 } })
    expect(limited.description).toBe("Too Many Requests: retry after 1")
  })

  it("delivers updates to the webhook in order with the secret header, retries a failing webhook, and refuses getUpdates meanwhile", async () => {
    const received: Array<{ secret: string | undefined; body: any }> = []
    let failFirst = true
    const hook = createServer((req: IncomingMessage, res: ServerResponse) => {
      let data = ""
      req.on("data", (c) => (data += c))
      req.on("end", () => {
        if (failFirst) {
          failFirst = false
          res.statusCode = 500
          return res.end()
        }
        received.push({ secret: req.headers["x-telegram-bot-api-secret-token"] as string | undefined, body: JSON.parse(data) })
        res.end("ok")
      })
    })
    await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r))
    try {
      const bot = sandbox.world.createBot({ username: "hook_bot" })
      const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/telegram/x`
      const set = await call(bot.token, "setWebhook", { url, secret_token: "s3cret_Tok-en", allowed_updates: ["message"] })
      expect(set.body).toEqual({ ok: true, result: true, description: "Webhook was set" })
      expect((await call(bot.token, "setWebhook", { url, secret_token: "bad token!" })).status).toBe(400)
      for (const text of ["one", "two", "three"]) sandbox.world.say("hook_bot", { userId: 3, text })
      await expect.poll(() => received.length, POLL).toBe(3)
      expect(received.map((r) => r.body.message.text)).toEqual(["one", "two", "three"])
      expect(received.every((r) => r.secret === "s3cret_Tok-en")).toBe(true)
      const polled = await call(bot.token, "getUpdates")
      expect(polled.status).toBe(409)
      expect(polled.body.description).toMatch(/webhook is active/)
      expect((await call(bot.token, "deleteWebhook")).body.description).toBe("Webhook was deleted")
      expect((await call(bot.token, "getUpdates")).status).toBe(200)
    } finally {
      await new Promise((r) => hook.close(r))
    }
  })

  it("ends a long poll with 409 when a second poller arrives", async () => {
    const bot = sandbox.world.createBot({ username: "twice_bot" })
    const first = call(bot.token, "getUpdates", { timeout: 5 })
    await new Promise((r) => setTimeout(r, 50))
    const second = call(bot.token, "getUpdates", { timeout: 0 })
    expect((await first).status).toBe(409)
    expect((await second).status).toBe(200)
  })

  it("plays scripted faults, e.g. a 429 storm, before doing the work", async () => {
    const bot = sandbox.world.createBot({ username: "fault_bot" })
    sandbox.world.say("fault_bot", { userId: 5, text: "x" })
    await post("/sandbox/fault_bot/faults", [{ method: "sendMessage", errorCode: 429, retryAfter: 2 }, { errorCode: 502 }])
    const a = await call(bot.token, "sendMessage", { chat_id: 5, text: "1" })
    expect(a.body).toEqual({ ok: false, error_code: 429, description: "Too Many Requests: retry after 2", parameters: { retry_after: 2 } })
    expect((await call(bot.token, "sendMessage", { chat_id: 5, text: "1" })).status).toBe(502)
    expect((await call(bot.token, "sendMessage", { chat_id: 5, text: "1" })).status).toBe(200)
    expect(sandbox.world.messages("fault_bot")).toHaveLength(1)
  })

  it("serves the web chat page", async () => {
    const res = await fetch(`${sandbox.apiRoot}/sandbox`)
    expect(res.status).toBe(200)
    expect(await res.text()).toContain("botfleet sandbox chat")
  })

  it("takes a fleet bot's id wherever it takes its username, and lists both", async () => {
    const bot = sandbox.world.createBot({ username: "named_demo_bot", fleetId: "demo-named" })
    const listed = (await (await fetch(`${sandbox.apiRoot}/sandbox/bots`)).json()) as { bots: Array<{ username: string; botId: string | null }> }
    expect(listed.bots.find((b) => b.username === "named_demo_bot")).toMatchObject({ botId: "demo-named" })
    expect(listed.bots.find((b) => b.username === "alpha_bot")).toMatchObject({ botId: null })
    for (const [i, ref] of ["demo-named", "named_demo_bot", "@named_demo_bot", "Demo-Named"].entries()) {
      const said = await post(`/sandbox/${encodeURIComponent(ref)}/say`, { userId: 500 + i, text: `hi ${i}` })
      expect(said.status, ref).toBe(200)
    }
    const updates = await call(bot.token, "getUpdates", { timeout: 0 })
    expect(updates.body.result.map((u: any) => u.message.text)).toEqual(["hi 0", "hi 1", "hi 2", "hi 3"])
    await call(bot.token, "sendMessage", { chat_id: 500, text: "hello 500" })
    const read = await fetch(`${sandbox.apiRoot}/sandbox/demo-named/messages?chatId=500`)
    expect(((await read.json()) as any).messages.map((m: any) => m.text)).toEqual(["hello 500"])
    // an @ means a username: the fleet id with an @ is no bot; nor is a name no bot has
    expect((await post("/sandbox/@demo-named/say", { userId: 1, text: "x" })).status).toBe(404)
    expect((await post("/sandbox/nobody/say", { userId: 1, text: "x" })).status).toBe(404)
  })
})
