import type { FallbackReason } from "./aiState.pure.js"

/**
 * How a model call's failure is recorded (as `BotApiCallFailed`, like a Bot API refusal) and read
 * back as the reason for the fallback. Codes stay clear of the ones the actor acts on for Telegram
 * (401 stops a bot: a model server refusing its key must not), so a refused key is recorded as 400.
 */

export interface ModelFailure {
  readonly errorCode: number
  readonly description: string
}

/** Keys, bearer tokens and the like never reach an event or a log line through an error message. */
export const redactSecrets = (s: string): string =>
  s.replace(/\b(sk|pk|rk)-[A-Za-z0-9_-]{8,}/g, "[redacted]").replace(/Bearer\s+\S+/gi, "Bearer [redacted]").slice(0, 300)

export const timedOut = (ms: number): ModelFailure => ({ errorCode: 408, description: `the model did not answer within ${ms} ms` })
export const unreachable = (message: string): ModelFailure => ({ errorCode: 503, description: `the model server is unreachable: ${redactSecrets(message)}` })
export const notConfigured: ModelFailure = { errorCode: 0, description: "no model server is configured (ai.baseURL or AI_BASE_URL)" }

/** An HTTP error answer of the model server. */
export const httpFailure = (status: number, message: string): ModelFailure =>
  status === 401 || status === 403
    ? { errorCode: 400, description: `the model server refused the API key (${status}): ${redactSecrets(message)}` }
    : { errorCode: status, description: `the model server answered ${status}: ${redactSecrets(message)}` }

/** Why the bot fell back, from the recorded failure. */
export const fallbackReasonOf = (errorCode: number): FallbackReason =>
  errorCode === 0 ? "not_configured" : errorCode === 408 ? "timeout" : errorCode === 429 ? "rate_limited" : errorCode >= 400 && errorCode < 500 ? "refused" : "unavailable"

/** What a successful model call records: the answer and its usage, not the whole response. */
export interface ModelResult {
  readonly content: string
  readonly model: string
  readonly promptTokens: number
  readonly completionTokens: number
  readonly finishReason: string | null
}

/** The recorded result of a call skipped before it was sent (over budget): nothing reached the model. */
export interface SkippedResult {
  readonly skipped: "over_budget"
  readonly budget: "bot" | "user"
}

export const readModelResult = (v: unknown): ModelResult | SkippedResult | null => {
  const o = v as Record<string, unknown> | null
  if (typeof o !== "object" || o === null) return null
  if (o["skipped"] === "over_budget") return { skipped: "over_budget", budget: o["budget"] === "user" ? "user" : "bot" }
  if (typeof o["content"] !== "string") return null
  const n = (x: unknown) => (typeof x === "number" && Number.isFinite(x) && x >= 0 ? x : 0)
  return {
    content: o["content"],
    model: typeof o["model"] === "string" ? o["model"] : "",
    promptTokens: n(o["promptTokens"]),
    completionTokens: n(o["completionTokens"]),
    finishReason: typeof o["finishReason"] === "string" ? o["finishReason"] : null
  }
}
