import { makeBotDecider } from "../../src/actors/decider/decide.js"
import { echoHandler } from "../../src/actors/decider/updateHandler.js"
import type { DomainEvent, EventOf } from "../../src/events/schema/catalogue.js"
import type { NewEvent } from "../../src/events/schema/envelope.js"

/** The bot id the recorded conversations are registered as. */
export const BOT = "diary"

/** A fake Telegram: every sendMessage gets a message id, as the real one answers. */
const telegram = (intent: EventOf<"BotApiCallIntended">): ReadonlyArray<DomainEvent> => {
  const p = intent.params as { chat_id: number; text: string }
  const message = { message_id: 900, chat: { id: p.chat_id, type: "private" }, text: p.text }
  return [
    { _tag: "BotApiCallSucceeded", callId: intent.callId, result: message },
    { _tag: "ReplySent", chatId: p.chat_id, messageId: 900, text: p.text, at: "2026-12-01T00:00:30.000Z" }
  ]
}

/** A conversation recorded the way the actor records it (the echo kind), as new events with their correlation ids. */
export const recordConversation = async (turns: ReadonlyArray<{ readonly userId: number; readonly name: string; readonly text: string }>): Promise<Array<NewEvent>> => {
  const decider = makeBotDecider(() => echoHandler)
  const out: Array<NewEvent> = []
  let state = decider.initialState
  const append = (events: ReadonlyArray<DomainEvent>, occurredAt: string, correlationId: string, actor: string) => {
    for (const data of events) {
      out.push({ data, occurredAt, correlationId, actor })
      state = decider.evolve(state, data)
    }
  }
  const reg = "2026-12-01T00:00:00.000Z"
  append(await decider.decide({ _tag: "Register", ownerId: "o", name: BOT, kind: "echo", mode: "sandbox", at: reg }, state), reg, "reg", "owner:o")
  const seen = new Set<number>()
  for (const [n, t] of turns.entries()) {
    const at = new Date(Date.parse(reg) + (n + 1) * 60_000).toISOString()
    // what a kind that greets users by name records (the echo kind itself does not)
    if (!seen.has(t.userId)) append([{ _tag: "UserSeen", userId: t.userId, firstName: t.name, username: `${t.name.toLowerCase()}_tg`, at }], at, `seen:${t.userId}`, "system")
    seen.add(t.userId)
    const inboxId = `${n + 1}-0`
    const update = { update_id: 100 + n, message: { message_id: n + 1, text: t.text, chat: { id: t.userId, type: "private" }, from: { id: t.userId, first_name: t.name } } }
    for (;;) {
      const decided = await decider.decide({ _tag: "HandleUpdate", inboxId, update, at }, state)
      append(decided, at, `inbox:${inboxId}`, `user:${t.userId}`)
      const last = decided[decided.length - 1]
      if (last?._tag !== "BotApiCallIntended") break
      append(telegram(last), at, `inbox:${inboxId}`, "system")
    }
  }
  return out
}

