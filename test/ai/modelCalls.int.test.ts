import { randomBytes } from "node:crypto"
import { Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { CallExecutor } from "../../src/actors/actor.js"
import { initialState } from "../../src/actors/decider/state.js"
import type { BotState } from "../../src/actors/decider/state.js"
import { AI_METHOD } from "../../src/ai/aiConfig.pure.js"
import { withModelCalls } from "../../src/ai/modelCalls.js"
import { makeSecretBox } from "../../src/ai/secretBox.js"
import { startAiStub } from "../../src/ai/stubServer.js"
import type { AiStub } from "../../src/ai/stubServer.js"
import type { EventOf } from "../../src/events/schema/catalogue.js"

let stub: AiStub
beforeAll(async () => {
  stub = await startAiStub()
})
afterAll(async () => {
  await stub.close()
})

const box = makeSecretBox(randomBytes(32))
const intent = (params: Record<string, unknown>): EventOf<"BotApiCallIntended"> => ({ _tag: "BotApiCallIntended", callId: "5:0", method: AI_METHOD, params, awaited: true })
const messages = [{ role: "user", content: "hi" }]

/** The bot's Bot API side, recording what it was asked to send. */
const botSide = () => {
  const sent: Array<EventOf<"BotApiCallIntended">> = []
  const calls: CallExecutor = async (_botId, _state, i) => {
    sent.push(i)
    return [{ _tag: "BotApiCallSucceeded", callId: i.callId, result: true }]
  }
  return { sent, calls }
}

const stateWith = (ai: Record<string, unknown>): BotState => ({ ...initialState, config: { ai } as never })

describe("model calls as recorded calls", () => {
  it("shows 'typing…' in the chat while the model thinks, and records the answer with its usage", async () => {
    const bot = botSide()
    const execute = withModelCalls(bot.calls, { box, defaultBaseURL: () => stub.baseURL, typingEveryMs: 150 })
    stub.setLatency(600)
    try {
      const events = await execute("b1", stateWith({}), intent({ chat_id: 9, model: "botfleet-stub", messages, timeout_ms: 5000 }))
      expect(events).toEqual([
        { _tag: "BotApiCallSucceeded", callId: "5:0", result: expect.objectContaining({ content: expect.stringContaining('You said: "hi"'), model: "botfleet-stub", finishReason: "stop" }) }
      ])
    } finally {
      stub.setLatency(0)
    }
    const typing = bot.sent.filter((i) => i.method === "sendChatAction")
    // the first at once, then refreshed (timers of one process fire in order: 150 ms before 600 ms)
    expect(typing.length).toBeGreaterThanOrEqual(2)
    expect(typing[0]!.params).toEqual({ chat_id: 9, action: "typing" })
    const n = typing.length
    await new Promise((r) => setTimeout(r, 400))
    expect(bot.sent.filter((i) => i.method === "sendChatAction")).toHaveLength(n) // stops once the model answered
  })

  it("passes Bot API intents through, skips a call decided over budget, and is made once: no retry after a failure", async () => {
    const bot = botSide()
    const execute = withModelCalls(bot.calls, { box, defaultBaseURL: () => stub.baseURL })
    await execute("b1", stateWith({}), { _tag: "BotApiCallIntended", callId: "6:0", method: "sendMessage", params: { chat_id: 1, text: "x" }, awaited: true })
    expect(bot.sent.map((i) => i.method)).toEqual(["sendMessage"])
    const before = stub.requests
    expect(await execute("b1", stateWith({}), intent({ model: "m", messages, skip: "over_budget", budget: "user" }))).toEqual([
      { _tag: "BotApiCallSucceeded", callId: "5:0", result: { skipped: "over_budget", budget: "user" } }
    ])
    expect(stub.requests).toBe(before)
    stub.fail({ status: 500 })
    const failed = await execute("b1", stateWith({}), intent({ model: "m", messages }))
    expect(failed).toEqual([{ _tag: "BotApiCallFailed", callId: "5:0", errorCode: 500, description: expect.stringContaining("answered 500") }])
    expect(stub.requests).toBe(before + 1)
  })

  it("uses the bot's own server and sealed key; with none configured it records why, sending nothing", async () => {
    const execute = withModelCalls(botSide().calls, { box, defaultBaseURL: () => null })
    expect(await execute("b1", stateWith({}), intent({ model: "m", messages }))).toEqual([
      { _tag: "BotApiCallFailed", callId: "5:0", errorCode: 0, description: "no model server is configured (ai.baseURL or AI_BASE_URL)" }
    ])
    const sealed = box.seal("b1", Redacted.make("sk-own-key-123456"))
    const ok = await execute("b1", stateWith({ baseURL: stub.baseURL, apiKey: sealed }), intent({ model: "m", messages }))
    expect(ok[0]!._tag).toBe("BotApiCallSucceeded")
    // another bot's sealed key does not open: refused, recorded, nothing sent
    const refused = await execute("b2", stateWith({ baseURL: stub.baseURL, apiKey: sealed }), intent({ model: "m", messages }))
    expect(refused).toEqual([{ _tag: "BotApiCallFailed", callId: "5:0", errorCode: 400, description: expect.stringContaining("cannot be opened") }])
    expect(JSON.stringify(refused)).not.toContain("sk-own-key")
  })
})
