import type { DomainEvent, EventOf } from "../events/schema/catalogue.js"
import type { CallFn, Sender } from "./sender.js"

/**
 * Recorded Bot API calls. A bot's handler never calls Telegram itself: it records the intent
 * (`BotApiCallIntended`, appended with the update that caused it), then the actor hands each new
 * intent to `executeIntent`, which sends it through the outbox sender and returns the result
 * events to append (`BotApiCallSucceeded` / `BotApiCallFailed`, plus `ReplySent` or
 * `UserBlockedBot`). Hence:
 * - a crash between the intent and its result leaves the intent pending in the bot's state; on
 *   resume `abandonPendingCalls` records `BotApiCallOutcomeUnknown` for it: never re-sent,
 *   because Telegram may have acted;
 * - a replay folds the recorded events and calls nothing: only a live actor executes intents.
 */

export type Intent = EventOf<"BotApiCallIntended">

export interface ExecuteContext {
  /** Key of the bot in the sender's limit buckets and lanes. */
  readonly botKey: string
  readonly sender: Sender
  /** The bot's Bot API client (token inside). */
  readonly call: CallFn
  /** The time to record results at (the live clock: results are inputs, recorded as they happen). */
  readonly now: () => string
}

const chatIdOf = (params: unknown): number | undefined => {
  const id = (params as { chat_id?: unknown } | null)?.chat_id
  return typeof id === "number" ? id : typeof id === "string" && /^-?\d+$/.test(id) ? Number(id) : undefined
}

/** Sends one recorded intent and returns the events recording how it ended. */
export const executeIntent = async (intent: Intent, ctx: ExecuteContext): Promise<ReadonlyArray<DomainEvent>> => {
  const params = (intent.params ?? {}) as Record<string, unknown>
  const outcome = await ctx.sender.send(ctx.botKey, intent.method, params, ctx.call)
  const at = ctx.now()
  switch (outcome._tag) {
    case "Sent": {
      const events: DomainEvent[] = [{ _tag: "BotApiCallSucceeded", callId: intent.callId, result: outcome.result }]
      const m = outcome.result as { message_id?: unknown; chat?: { id?: unknown }; text?: unknown } | null
      if (intent.method === "sendMessage" && typeof m?.message_id === "number" && typeof m.chat?.id === "number") {
        const replyTo = (params["reply_parameters"] as { message_id?: unknown } | undefined)?.message_id ?? params["reply_to_message_id"]
        events.push({
          _tag: "ReplySent",
          chatId: m.chat.id,
          messageId: m.message_id,
          text: typeof m.text === "string" ? m.text : String(params["text"] ?? ""),
          ...(typeof replyTo === "number" ? { inReplyTo: replyTo } : {}),
          at
        })
      }
      return events
    }
    case "Refused": {
      const events: DomainEvent[] = [
        {
          _tag: "BotApiCallFailed",
          callId: intent.callId,
          errorCode: outcome.errorCode,
          description: outcome.description,
          ...(outcome.retryAfter !== undefined ? { retryAfter: outcome.retryAfter } : {})
        }
      ]
      const chatId = chatIdOf(params)
      // a private chat's id is its user's id: a 403 there means that user blocked the bot
      if (outcome.errorCode === 403 && chatId !== undefined && chatId > 0) events.push({ _tag: "UserBlockedBot", userId: chatId, at })
      return events
    }
    case "Unknown":
      return [{ _tag: "BotApiCallOutcomeUnknown", callId: intent.callId, reason: outcome.reason }]
  }
}

/**
 * Executes a batch of intents (those an append just recorded). Intents to the same chat keep
 * their order (the sender's lanes); results come back in intent order.
 */
export const executeIntents = (intents: ReadonlyArray<Intent>, ctx: ExecuteContext): Promise<ReadonlyArray<DomainEvent>> =>
  Promise.all(intents.map((i) => executeIntent(i, ctx))).then((rs) => rs.flat())

/** The intents among freshly decided events. */
export const intentsIn = (events: ReadonlyArray<DomainEvent>): ReadonlyArray<Intent> =>
  events.filter((e): e is Intent => e._tag === "BotApiCallIntended")

/**
 * On resume: every call whose intent is recorded and whose outcome is not gets an explicit
 * `BotApiCallOutcomeUnknown`. It is NOT sent again: whether Telegram acted before the crash is
 * unknowable, and a duplicate message is worse than a visibly missing one.
 */
export const abandonPendingCalls = (pendingCalls: ReadonlyMap<string, string>, reason = "the node stopped between the call's intent and its result"): ReadonlyArray<DomainEvent> =>
  [...pendingCalls.keys()].map((callId) => ({ _tag: "BotApiCallOutcomeUnknown" as const, callId, reason }))
