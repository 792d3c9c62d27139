import { describe, expect, it } from "vitest"
import { RESUMED_REASON, makeBotDecider } from "../../../src/actors/decider/decide.js"
import { keysOfUpdate } from "../../../src/actors/decider/entries.js"
import { SNAPSHOT_SCHEMA_VERSION, decodeCore, encodeCore } from "../../../src/actors/decider/snapshot.js"
import { fold } from "../../../src/actors/decider/state.js"
import { RecordedCallFailed, RecordedCallUnknown, userOf } from "../../../src/actors/decider/updateHandler.js"
import type { UpdateHandler } from "../../../src/actors/decider/updateHandler.js"
import type { DomainEvent } from "../../../src/events/schema/catalogue.js"
import { deciderSpec } from "../deciderSpec.js"

/*
 * A handler that awaits its Bot API calls is decided in steps: each step re-runs it against the
 * results recorded so far and ends at the first call without one (its intent). These specs are
 * the contract the actor (live) and replay (recorded results) both rely on.
 */

const at = "2026-01-01T10:00:00.000Z"
const registered: DomainEvent = { _tag: "BotRegistered", ownerId: "o1", name: "Typist", kind: "typist", mode: "sandbox" }
const update = { update_id: 5, message: { message_id: 50, chat: { id: 7, type: "private" }, from: { id: 7 }, text: "go" } }
const input = { _tag: "HandleUpdate" as const, inboxId: "1-0", update, at }
const received: DomainEvent = { _tag: "UpdateReceived", inboxId: "1-0", updateId: 5, update, receivedAt: at }

/** Sends "typing…", then edits that very message (needs its real message_id), and records what it saw. */
const seen: string[] = []
const typist: UpdateHandler = {
  handle: async ({ call }) => {
    try {
      const sent = (await call("sendMessage", { chat_id: 7, text: "typing…" })) as { message_id: number }
      await call("editMessageText", { chat_id: 7, message_id: sent.message_id, text: "done" })
      seen.push(`edited ${sent.message_id}`)
      return [{ _tag: "ReplySent", chatId: 7, messageId: sent.message_id, text: "done", at }]
    } catch (e) {
      seen.push(e instanceof RecordedCallFailed ? `refused ${e.errorCode}` : e instanceof RecordedCallUnknown ? "unknown" : `other ${String(e)}`)
      return []
    }
  }
}
const given = deciderSpec(makeBotDecider(() => typist))
const intent = (n: number, method: string, params: Record<string, unknown>): DomainEvent => ({
  _tag: "BotApiCallIntended",
  callId: `5:${n}`,
  method,
  params,
  awaited: true
})
const sendIntent = intent(0, "sendMessage", { chat_id: 7, text: "typing…" })
const sent: DomainEvent = { _tag: "BotApiCallSucceeded", callId: "5:0", result: { message_id: 901, chat: { id: 7 }, text: "typing…" } }

describe("handlers that await Bot API calls", () => {
  it("first records the intent of the first call, and nothing else (the update is not handled yet)", async () => {
    const state = await given([registered]).when(input).then([sendIntent])
    expect(state.inboxCursor).toBeNull()
    expect(state.pendingCalls.size).toBe(1)
  })

  it("gives the handler the recorded result, so its next call uses the real message id", async () => {
    await given([registered, sendIntent, sent]).when(input).then([intent(1, "editMessageText", { chat_id: 7, message_id: 901, text: "done" })])
  })

  it("completes the update once every call has its recorded outcome", async () => {
    seen.length = 0
    const state = await given([registered, sendIntent, sent, intent(1, "editMessageText", { chat_id: 7, message_id: 901, text: "done" }), { _tag: "BotApiCallSucceeded", callId: "5:1", result: true }])
      .when(input)
      .then([received, { _tag: "ReplySent", chatId: 7, messageId: 901, text: "done", at }])
    expect(seen).toEqual(["edited 901"])
    expect(state.inboxCursor).toBe("1-0")
    expect(state.openCalls.size).toBe(0)
  })

  it("hands Telegram's refusal to the handler as a typed error", async () => {
    seen.length = 0
    await given([registered, sendIntent, { _tag: "BotApiCallFailed", callId: "5:0", errorCode: 403, description: "Forbidden: bot was blocked by the user" }])
      .when(input)
      .then([received])
    expect(seen).toEqual(["refused 403"])
  })

  it("after a crash between sending and recording: records the outcome as unknown, never sends again, the handler sees a typed error", async () => {
    seen.length = 0
    const state = await given([registered, sendIntent])
      .when(input)
      .then([{ _tag: "BotApiCallOutcomeUnknown", callId: "5:0", reason: RESUMED_REASON }, received])
    expect(seen).toEqual(["unknown"])
    expect(state.pendingCalls.size).toBe(0)
  })

  it("refuses a call to a user who blocked the bot without recording or sending it, keeping the call numbering", async () => {
    // user 7 writes; the bot also tells user 8, who blocked it, learning so from its own first call
    const notify: UpdateHandler = {
      handle: async ({ call }) => {
        for (const text of ["one", "two"]) await call("sendMessage", { chat_id: "8", text }).catch((e: unknown) => seen.push(`${(e as RecordedCallFailed).callId} refused`))
        await call("sendMessage", { chat_id: 7, text: "done" })
        return []
      }
    }
    seen.length = 0
    const refused: DomainEvent = { _tag: "BotApiCallFailed", callId: "5:0", errorCode: 403, description: "Forbidden: bot was blocked by the user" }
    const blocked8: DomainEvent = { _tag: "UserBlockedBot", userId: 8, at }
    await deciderSpec(makeBotDecider(() => notify))([registered, intent(0, "sendMessage", { chat_id: "8", text: "one" }), refused, blocked8])
      .when(input)
      .then([intent(2, "sendMessage", { chat_id: 7, text: "done" })])
    expect(seen).toEqual(["5:0 refused", "5:1 refused"])
  })

  it("answers a user who blocked the bot and writes again, and no longer counts them as blocked", async () => {
    seen.length = 0
    const blocked7: DomainEvent = { _tag: "UserBlockedBot", userId: 7, at: "2026-01-01T09:00:00.000Z" }
    await given([registered, blocked7]).when(input).then([sendIntent])
    const message: DomainEvent = { _tag: "MessageReceived", chatId: 7, chatType: "private", userId: 7, messageId: 50, text: "go", at }
    expect(userOf(fold([registered, blocked7, message]), 7)?.blocked).toBe(false)
    // a message received before the block was learned (the reply to it got the 403) lifts nothing
    const learnedLater: DomainEvent = { _tag: "UserBlockedBot", userId: 7, at: "2026-01-01T10:00:01.000Z" }
    expect(userOf(fold([registered, learnedLater, message]), 7)?.blocked).toBe(true)
    await given([registered, learnedLater]).when(input).then([received])
  })

  it("keeps open calls across a snapshot; the entries an update needs are asked for, then it decides as before", async () => {
    const state = fold([registered, sendIntent, sent])
    const core = decodeCore(SNAPSHOT_SCHEMA_VERSION, JSON.parse(JSON.stringify(encodeCore(state))))!
    const decider = makeBotDecider(() => typist)
    // restored from the bot-level snapshot alone: the chat's user is not loaded, so nothing is decided
    await expect(decider.decide(input, core)).rejects.toMatchObject({ _tag: "NeedsEntries", keys: ["u:7"] })
    const restored = { ...core, entries: core.entries.withLoaded(keysOfUpdate(input.update).map((k) => [k, state.entries.value(k) ?? null] as const)) }
    expect(await decider.decide(input, restored)).toEqual([intent(1, "editMessageText", { chat_id: 7, message_id: 901, text: "done" })])
  })

  it("closes intents a bot left without outcome in streams written before handlers awaited calls, when it starts", async () => {
    const legacy: DomainEvent = { _tag: "BotApiCallIntended", callId: "4:0", method: "sendMessage", params: { chat_id: 7, text: "hi" } }
    const state = await given([registered, { _tag: "UpdateReceived", inboxId: "0-1", updateId: 4, update: {}, receivedAt: at }, legacy])
      .when({ _tag: "Start", nodeId: "n1", fence: 3, at })
      .then([{ _tag: "BotStarted", nodeId: "n1", fence: 3 }, { _tag: "BotApiCallOutcomeUnknown", callId: "4:0", reason: RESUMED_REASON }])
    expect(state.pendingCalls.size).toBe(0)
    expect(state.openCalls.size).toBe(0)
  })
})
