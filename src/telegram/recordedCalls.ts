import { chatIdOf } from "../actors/decider/updateHandler.js"
import type { DomainEvent, EventOf } from "../events/schema/catalogue.js"
import { recordCall, refusedResult } from "../metrics/threadStats.js"
import type { CallFn, Sender } from "./sender.js"

/**
 * Recorded Bot API calls. A bot's handler never calls Telegram itself: its call ends the current
 * decision with the intent (`BotApiCallIntended`), which the actor appends, then hands to
 * `executeIntent`: sent through the sender (limits, 429s, no duplicating retries), it returns the
 * events recording how it ended (`BotApiCallSucceeded` / `BotApiCallFailed`, plus `ReplySent` or
 * `UserBlockedBot`, or `BotApiCallOutcomeUnknown` when Telegram may or may not have acted). The
 * actor appends those with the update's next decision, in which the handler's call resolves with
 * the recorded result. A replay folds the recorded results and calls nothing.
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

/** Sends one recorded intent and returns the events recording how it ended. */
export const executeIntent = async (intent: Intent, ctx: ExecuteContext): Promise<ReadonlyArray<DomainEvent>> => {
  const params = (intent.params ?? {}) as Record<string, unknown>
  const outcome = await ctx.sender.send(ctx.botKey, intent.method, params, ctx.call)
  recordCall(intent.method, outcome._tag === "Sent" ? "ok" : outcome._tag === "Unknown" ? "unknown" : refusedResult(outcome.errorCode))
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
      // a photo or document reaches the transcript as its caption, or what it was
      const media = m as { photo?: unknown; document?: { file_name?: unknown }; caption?: unknown } | null
      if ((intent.method === "sendPhoto" || intent.method === "sendDocument") && typeof m?.message_id === "number" && typeof m.chat?.id === "number") {
        const what = intent.method === "sendPhoto" ? "[photo]" : `[document${typeof media?.document?.file_name === "string" ? ` ${media.document.file_name}` : ""}]`
        events.push({ _tag: "ReplySent", chatId: m.chat.id, messageId: m.message_id, text: typeof media?.caption === "string" ? media.caption : what, at })
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
      const chatId = chatIdOf(params["chat_id"])
      // a private chat's id is its user's id. Only a block (or a deleted account) marks the user:
      // other 403s there ("can't initiate conversation") say nothing about what the user did
      if (outcome.errorCode === 403 && chatId !== null && chatId > 0 && /blocked by the user|user is deactivated/i.test(outcome.description)) {
        events.push({ _tag: "UserBlockedBot", userId: chatId, at })
      }
      return events
    }
    case "Unknown":
      return [{ _tag: "BotApiCallOutcomeUnknown", callId: intent.callId, reason: outcome.reason }]
  }
}
