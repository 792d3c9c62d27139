import { RecordedCallFailed, RecordedCallUnknown } from "../../actors/decider/updateHandler.js"
import type { UpdateHandler } from "../../actors/decider/updateHandler.js"
import { DEFAULT_HANDOFF_GREETING, HANDOFF_METHOD, handoffGreeting, handoffOf, handoffSessionKey } from "../../actors/decider/handoff.js"
import type { HandoffRequest } from "../../actors/decider/handoff.js"
import type { DomainEvent } from "../../events/schema/catalogue.js"
import { applyPersonality, parseBuiltinConfig } from "./personality.pure.js"
import type { BotContext } from "./telegrafHandler.js"

/**
 * The target's side of a handoff (actors/decider/handoff.ts), in front of every bot kind: a
 * handoff update is not a Telegram update, so the kind's code never sees it. The target takes
 * each handoff id once (remembered in the session `handoff:<id>`: a second delivery after a crash
 * changes nothing), refuses one from another owner's bot (the sender checks too; this holds even
 * if an entry was put in the inbox by hand), and greets the user in the handed chat with the
 * context: the config's `handoffGreeting` (`{name}`, `{from}`, `{context}`), with the bot's
 * personality. A greeting Telegram refuses (the user never opened this bot: 403) leaves the
 * handoff taken, without a greeting.
 */
export const withHandoffGreeting = (inner: UpdateHandler): UpdateHandler => ({
  handle: async (ctx) => {
    const h = handoffOf(ctx.update)
    if (h === null) return inner.handle(ctx)
    const key = handoffSessionKey(h.handoffId)
    if (ctx.state.sessions.get(key) !== undefined) return []
    const taken: DomainEvent = {
      _tag: "SessionChanged",
      key,
      patch: { from: h.from, userId: h.userId, chatId: h.chatId, context: h.context, at: ctx.at, ...(h.fromOwner !== ctx.state.ownerId ? { refused: "another owner's bot" } : {}) }
    }
    if (h.fromOwner !== ctx.state.ownerId) return [taken]
    const config = ctx.state.config as Record<string, unknown>
    const template = typeof config["handoffGreeting"] === "string" ? config["handoffGreeting"] : DEFAULT_HANDOFF_GREETING
    const text = applyPersonality(parseBuiltinConfig(config).personality, handoffGreeting(template, h))
    try {
      await ctx.call("sendMessage", { chat_id: h.chatId, text })
    } catch (e) {
      if (!(e instanceof RecordedCallFailed || e instanceof RecordedCallUnknown)) throw e
    }
    return [taken]
  }
})

/**
 * Hands the update's user to another bot of the same owner (for owners' telegraf modules; the
 * built-in kind's buttons use it too). Resolves with the handoff id once it is in the target's
 * inbox; rejects with telegraf's `TelegramError` when it is refused (403: another owner's bot,
 * 404: no such bot, 400: bad params).
 */
export const handOff = async (ctx: BotContext, o: { readonly to: string; readonly context: string }): Promise<string> => {
  const from = ctx.from
  const chatId = ctx.chat?.id
  if (!from || chatId === undefined) throw new Error("handOff needs an update with a user and a chat")
  const params: HandoffRequest = {
    to: o.to,
    userId: from.id,
    chatId,
    context: o.context,
    firstName: from.first_name,
    ...(from.language_code !== undefined ? { languageCode: from.language_code } : {})
  }
  const result = (await ctx.telegram.callApi(HANDOFF_METHOD as never, params as never)) as unknown as { handoffId: string }
  return result.handoffId
}
