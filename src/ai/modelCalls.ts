import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError } from "openai"
import { Redacted } from "effect"
import type { CallExecutor } from "../actors/actor.js"
import type { BotState } from "../actors/decider/state.js"
import type { DomainEvent } from "../events/schema/catalogue.js"
import { recordCall, refusedResult } from "../metrics/threadStats.js"
import { AI_METHOD, parseAiConfig } from "./aiConfig.pure.js"
import { httpFailure, notConfigured, timedOut, unreachable } from "./modelOutcome.pure.js"
import type { ModelFailure, ModelResult } from "./modelOutcome.pure.js"
import { ApiKeyUnsealable } from "./secretBox.js"
import type { SecretBox } from "./secretBox.js"

/**
 * The model side of recorded calls: an intent whose method is `ai.chat.completions` goes to the
 * bot's OpenAI-compatible server through the `openai` client instead of the Bot API. The actor
 * recorded the intent before this runs and records what this returns, so a model call is made at
 * most once per intent: the client never retries (`maxRetries: 0`), a timeout is recorded as a
 * failure, and a crash before the result is recorded leaves the outcome unknown (the decider
 * records it so and the bot falls back; it is never sent again). While waiting, the chat sees
 * "typing…" (an unrecorded `sendChatAction`, refreshed every 4 s: it changes no state).
 */

export interface ModelCallOptions {
  /** Opens sealed API keys (the fleet's secret key). */
  readonly box: SecretBox
  /** The server for bots whose config names none (AI_BASE_URL, or the node's offline stub). */
  readonly defaultBaseURL: () => string | null
  /** The key for bots whose config has none (AI_API_KEY). */
  readonly defaultApiKey?: Redacted.Redacted<string> | null
  /** The typing indicator's refresh period (default 4,000 ms: Telegram shows it about 5 s). */
  readonly typingEveryMs?: number
}

const MAX_CLIENTS = 500

type Outcome = { readonly _tag: "Ok"; readonly result: ModelResult } | { readonly _tag: "Failed"; readonly failure: ModelFailure }

/** Every other intent goes to `botCalls`; model intents to the bot's model server. */
export const withModelCalls = (botCalls: CallExecutor, o: ModelCallOptions): CallExecutor => {
  const clients = new Map<string, OpenAI>()
  const clientFor = (botId: string, baseURL: string, sealedKey: string | null): OpenAI | ApiKeyUnsealable => {
    const cacheKey = `${botId}\u0000${baseURL}\u0000${sealedKey ?? ""}`
    const hit = clients.get(cacheKey)
    if (hit) return hit
    let apiKey = o.defaultApiKey ? Redacted.value(o.defaultApiKey) : "none"
    if (sealedKey !== null) {
      const opened = o.box.open(botId, sealedKey)
      if (opened instanceof ApiKeyUnsealable) return opened
      apiKey = Redacted.value(opened)
    }
    // the clear key stays in this client's closure; never retried: a retry could answer twice
    const client = new OpenAI({ apiKey, baseURL, maxRetries: 0 })
    clients.set(cacheKey, client)
    if (clients.size > MAX_CLIENTS) clients.delete(clients.keys().next().value!)
    return client
  }

  const complete = async (botId: string, state: BotState, params: Record<string, unknown>): Promise<Outcome> => {
    const ai = parseAiConfig((state.config as Record<string, unknown>)["ai"])
    const baseURL = ai?.baseURL ?? o.defaultBaseURL()
    if (baseURL === null) return { _tag: "Failed", failure: notConfigured }
    const client = clientFor(botId, baseURL, ai?.apiKey ?? null)
    if (client instanceof ApiKeyUnsealable) return { _tag: "Failed", failure: { errorCode: 400, description: client.message } }
    const timeoutMs = typeof params["timeout_ms"] === "number" ? params["timeout_ms"] : (ai?.timeoutMs ?? 15_000)
    try {
      const r = await client.chat.completions.create(
        {
          model: String(params["model"] ?? ai?.model ?? ""),
          messages: params["messages"] as OpenAI.Chat.ChatCompletionMessageParam[],
          ...(typeof params["max_tokens"] === "number" ? { max_tokens: params["max_tokens"] } : {})
        },
        { timeout: timeoutMs, maxRetries: 0 }
      )
      const choice = r.choices[0]
      return {
        _tag: "Ok",
        result: {
          content: typeof choice?.message?.content === "string" ? choice.message.content : "",
          model: r.model,
          promptTokens: r.usage?.prompt_tokens ?? 0,
          completionTokens: r.usage?.completion_tokens ?? 0,
          finishReason: choice?.finish_reason ?? null
        }
      }
    } catch (e) {
      if (e instanceof APIConnectionTimeoutError) return { _tag: "Failed", failure: timedOut(timeoutMs) }
      if (e instanceof APIConnectionError) return { _tag: "Failed", failure: unreachable(e.message) }
      if (e instanceof APIError && typeof e.status === "number") return { _tag: "Failed", failure: httpFailure(e.status, e.message) }
      return { _tag: "Failed", failure: unreachable(e instanceof Error ? e.message : String(e)) }
    }
  }

  return async (botId, state, intent) => {
    if (intent.method !== AI_METHOD) return botCalls(botId, state, intent)
    const params = (intent.params ?? {}) as Record<string, unknown>
    // decided over budget: recorded as skipped, nothing reaches the model
    if (params["skip"] === "over_budget") {
      recordCall(AI_METHOD, "not_sent")
      return [{ _tag: "BotApiCallSucceeded", callId: intent.callId, result: { skipped: "over_budget", budget: params["budget"] === "user" ? "user" : "bot" } }]
    }
    const chatId = params["chat_id"]
    const typing = () =>
      void botCalls(botId, state, { _tag: "BotApiCallIntended", callId: `${intent.callId}:typing`, method: "sendChatAction", params: { chat_id: chatId, action: "typing" } }).catch(() => undefined)
    if (chatId !== undefined) typing()
    const timer = chatId !== undefined ? setInterval(typing, o.typingEveryMs ?? 4_000) : undefined
    let outcome: Outcome
    try {
      outcome = await complete(botId, state, params)
    } finally {
      clearInterval(timer)
    }
    // botfleet_bot_api_calls_total{method="ai.chat.completions"}: ok, or the recorded failure's code class (4xx, 5xx, 429...)
    recordCall(AI_METHOD, outcome._tag === "Ok" ? "ok" : refusedResult(outcome.failure.errorCode))
    const events: DomainEvent[] =
      outcome._tag === "Ok"
        ? [{ _tag: "BotApiCallSucceeded", callId: intent.callId, result: { ...outcome.result } }]
        : [{ _tag: "BotApiCallFailed", callId: intent.callId, errorCode: outcome.failure.errorCode, description: outcome.failure.description }]
    return events
  }
}
