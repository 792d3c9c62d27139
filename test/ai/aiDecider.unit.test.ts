import { describe, expect, it } from "vitest"
import { makeBotDecider } from "../../src/actors/decider/decide.js"
import { fold } from "../../src/actors/decider/state.js"
import type { BotState } from "../../src/actors/decider/state.js"
import { AI_METHOD } from "../../src/ai/aiConfig.pure.js"
import type { DomainEvent } from "../../src/events/schema/catalogue.js"
import { BotModuleRegistry } from "../../src/telegram/bots/registry.js"

const decider = makeBotDecider(new BotModuleRegistry().handlerFor)
const at = "2026-12-04T10:00:00.000Z"
const config = { personality: { name: "Sage", tone: "plain" }, ai: { model: "m", dailyTokens: { bot: 100 }, fallback: "Later." } }
const registered = fold([
  { _tag: "BotRegistered", ownerId: "o", name: "sage", kind: "builtin", mode: "sandbox", config },
  { _tag: "BotStarted", nodeId: "n", fence: 1 }
])
const update = (id: number, chat: number, text: string) => ({
  update_id: id,
  message: { message_id: id, date: 0, text, chat: { id: chat, type: "private" }, from: { id: chat, is_bot: false, first_name: "Ann" } }
})
const decide = async (u: unknown, state: BotState) => decider.decide({ _tag: "HandleUpdate", inboxId: `1-${(u as { update_id: number }).update_id}`, update: u, at }, state)

describe("an AI reply, decided in steps (given / when / then)", () => {
  it("asks the model first, then sends its answer; the last step records the turn and its tokens", async () => {
    const u = update(1, 7, "what is up?")
    const step1 = await decide(u, registered)
    expect(step1).toEqual([expect.objectContaining({ _tag: "BotApiCallIntended", callId: "1:0", method: AI_METHOD, params: expect.objectContaining({ chat_id: 7, model: "m" }) })])
    const answered = fold([...step1, { _tag: "BotApiCallSucceeded", callId: "1:0", result: { content: "Not much.", model: "m", promptTokens: 30, completionTokens: 5, finishReason: "stop" } }], registered)
    const step2 = await decide(u, answered)
    expect(step2).toEqual([expect.objectContaining({ _tag: "BotApiCallIntended", callId: "1:1", method: "sendMessage", params: expect.objectContaining({ text: "Not much." }) })])
    const sent = fold([...step2, { _tag: "BotApiCallSucceeded", callId: "1:1", result: { message_id: 99, chat: { id: 7 }, text: "Not much." } }], answered)
    const last = await decide(u, sent)
    expect(last.map((e) => e._tag)).toEqual(["UpdateReceived", "UserSeen", "MessageReceived", "PersonalityAdapted", "AiReplied", "SessionChanged"])
    expect(last.find((e) => e._tag === "AiReplied")).toMatchObject({ chatId: 7, userId: 7, updateId: 1, promptTokens: 30, completionTokens: 5, user: "what is up?", assistant: "Not much.", day: "2026-12-04" })
  })

  it("follows its recorded model call even when another chat spent the budget between its steps (no mismatch)", async () => {
    const u = update(2, 8, "tell me more")
    const step1 = await decide(u, registered)
    const other: DomainEvent = { _tag: "AiReplied", chatId: 9, userId: 9, updateId: 3, model: "m", day: "2026-12-04", promptTokens: 150, completionTokens: 0, user: "x", assistant: "y", at }
    // the other chat's reply is recorded after this one's call: the budget is now spent
    const state = fold([...step1, other, { _tag: "BotApiCallSucceeded", callId: "2:0", result: { content: "More!", model: "m", promptTokens: 1, completionTokens: 1, finishReason: "stop" } }], registered)
    const step2 = await decide(u, state)
    expect(step2).toEqual([expect.objectContaining({ method: "sendMessage", params: expect.objectContaining({ text: "More!" }) })])
    // a new update now is over budget: its call is recorded as skipped, and it falls back
    const next = await decide(update(4, 8, "again?"), fold([...step2, { _tag: "BotApiCallSucceeded", callId: "2:1", result: true }], state))
    expect(next).toEqual([expect.objectContaining({ method: AI_METHOD, params: expect.objectContaining({ skip: "over_budget", budget: "bot" }) })])
  })

  it("answers with the fallback when the crash left the model call's outcome unknown (the intent is never re-sent)", async () => {
    const u = update(5, 10, "hello there")
    const step1 = await decide(u, registered)
    // the actor crashed after appending the intent: the update is decided again from that state
    const resumed = await decide(u, fold(step1, registered))
    expect(resumed).toEqual([
      { _tag: "BotApiCallOutcomeUnknown", callId: "5:0", reason: expect.stringContaining("stopped between sending") },
      expect.objectContaining({ _tag: "BotApiCallIntended", callId: "5:1", method: "sendMessage", params: expect.objectContaining({ text: "Later." }) })
    ])
  })
})
