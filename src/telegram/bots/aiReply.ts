import { TelegramError } from "telegraf"
import { RecordedCallUnknown } from "../../actors/decider/updateHandler.js"
import { AI_METHOD } from "../../ai/aiConfig.pure.js"
import type { AiConfig } from "../../ai/aiConfig.pure.js"
import {
  BOT_USAGE_KEY,
  conversationKey,
  dayOf,
  emptyUsage,
  overBudget,
  readConversation,
  readUsage,
  rollSummary,
  tokensOn,
  turnsToDrop,
  userUsageKey
} from "../../ai/aiState.pure.js"
import type { FallbackReason } from "../../ai/aiState.pure.js"
import { fallbackReasonOf, readModelResult } from "../../ai/modelOutcome.pure.js"
import { BLOCKED_DESCRIPTION } from "../../actors/decider/decide.js"
import { maxTokensFor, systemPrompt } from "./persona.pure.js"
import type { Adaptation, Persona } from "./persona.pure.js"
import type { BotContext } from "./telegrafHandler.js"

/**
 * An AI reply inside a bot's handler. The model call is a recorded call like a Bot API call
 * (`ai.chat.completions`): its intent is recorded, the actor's executor calls the model (typing
 * indicator while it waits, a timeout, never a retry), its result is recorded, and the handler runs
 * again with the result folded in; a replay folds the recorded result and calls nothing. Every
 * failure ends in the bot's fallback, recorded as `AiFallbackUsed` with its reason: the model is
 * down, slow, refused, rate-limited, the day's budget is spent, or a crash left the call's outcome
 * unknown (never sent again).
 *
 * The budget is checked when the call is first decided and the decision travels in the recorded
 * intent (`skip`), so the handler's later runs follow the recorded result even if another chat's
 * reply was recorded in between: a handler run never changes its mind about which calls it made.
 */
export const aiReply = async (
  ctx: BotContext,
  o: {
    readonly ai: AiConfig
    readonly persona: Persona
    readonly adaptation: Adaptation
    readonly text: string
    /** Sends a reply as the persona says it. */
    readonly say: (text: string) => Promise<unknown>
  }
): Promise<void> => {
  const chatId = ctx.chat!.id
  const userId = ctx.from?.id
  const day = dayOf(ctx.at)
  const { ai } = o
  const conversation = readConversation(ctx.botState.entries.get(conversationKey(chatId)))
  const botUsage = readUsage(ctx.botState.entries.get(BOT_USAGE_KEY), day)
  const userUsage = userId !== undefined ? readUsage(ctx.botState.entries.get(userUsageKey(userId)), day) : emptyUsage(day)
  const over = overBudget(ai.dailyTokens, { bot: tokensOn(botUsage, day), user: tokensOn(userUsage, day) })
  const turns = ai.memoryTurns === 0 ? [] : conversation.turns.slice(-ai.memoryTurns)
  const system = systemPrompt(o.persona, o.adaptation, ai.systemPrompt) + (conversation.summary ? `\nEarlier in this chat:\n${conversation.summary}` : "")
  const params = {
    // the chat the reply goes to: the typing indicator's, and a blocked user's chat is never called for
    chat_id: chatId,
    model: ai.model,
    messages: [
      { role: "system", content: system },
      ...turns.flatMap((t) => [
        { role: "user", content: t.user },
        { role: "assistant", content: t.assistant }
      ]),
      { role: "user", content: o.text }
    ],
    max_tokens: maxTokensFor(o.adaptation.length, ai.maxReplyTokens),
    timeout_ms: ai.timeoutMs,
    ...(over !== null ? { skip: "over_budget", budget: over } : {})
  }

  const fallback = async (reason: FallbackReason, detail?: string) => {
    ctx.record({ _tag: "AiFallbackUsed", chatId, ...(userId !== undefined ? { userId } : {}), reason, ...(detail ? { detail } : {}), day, at: ctx.at })
    await o.say(ai.fallback)
  }

  let raw: unknown
  try {
    raw = await ctx.telegram.callApi(AI_METHOD as "getMe", params as never)
  } catch (e) {
    if (e instanceof RecordedCallUnknown) return fallback("unknown", e.reason)
    // a user who blocked the bot is not answered at all (the decider refused the call)
    if (e instanceof TelegramError && e.description !== BLOCKED_DESCRIPTION) return fallback(fallbackReasonOf(e.code), e.description)
    throw e
  }
  const result = readModelResult(raw)
  if (result === null) return fallback("unavailable", "the model's answer had no text")
  if ("skipped" in result) return fallback("over_budget", `the ${result.budget === "bot" ? "bot's" : "user's"} daily token budget is spent`)
  const content = result.content.trim()
  if (content.length === 0) return fallback("unavailable", "the model answered with an empty text")
  ctx.record({
    _tag: "AiReplied",
    chatId,
    ...(userId !== undefined ? { userId } : {}),
    updateId: ctx.update.update_id,
    model: result.model || ai.model,
    day,
    promptTokens: result.promptTokens,
    completionTokens: result.completionTokens,
    user: o.text,
    assistant: content,
    at: ctx.at
  })
  // bounded memory: past `memoryTurns`, the oldest turns are folded into the rolling summary
  const drop = turnsToDrop(conversation, ai.memoryTurns)
  if (drop > 0) {
    ctx.record({ _tag: "ConversationSummarized", chatId, summary: rollSummary(conversation.summary, [...conversation.turns.slice(0, drop), { user: o.text, assistant: content }].slice(0, drop)), dropped: drop })
  }
  // Telegram takes at most 4,096 characters
  await o.say(content.length > 3900 ? `${content.slice(0, 3899)}…` : content)
}
