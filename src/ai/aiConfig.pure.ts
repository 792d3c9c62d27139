import { Schema } from "effect"

/**
 * The `ai` section of the built-in kind's configuration: which model answers (any
 * OpenAI-compatible server), how much the bot remembers, its budgets and its fallback. Read
 * leniently here (the schema below checks on write); pure, so a replay reads the same settings.
 */

/** The recorded-call method of a model call: never a Bot API method, routed to the model client. */
export const AI_METHOD = "ai.chat.completions"

/** A sealed API key starts with this (src/ai/secretBox.ts); anything else in `ai.apiKey` is sealed on write. */
export const SEALED_PREFIX = "sealed:"

export interface AiConfig {
  readonly model: string
  /** The server's base URL (`.../v1`); null: the node's AI_BASE_URL (the offline stub in the demo). */
  readonly baseURL: string | null
  /** The API key, sealed; null: the node's AI_API_KEY, or none (local servers need none). */
  readonly apiKey: string | null
  /** The owner's instructions, appended to the persona's system prompt. */
  readonly systemPrompt: string | null
  /** Turns (a user message and its answer) kept verbatim per chat; older ones go into the summary. */
  readonly memoryTurns: number
  /** Most completion tokens per reply. */
  readonly maxReplyTokens: number
  /** A model slower than this gets the fallback (the call is recorded as timed out, never retried). */
  readonly timeoutMs: number
  /** Tokens per UTC day for the whole bot and for one user; null: unlimited. */
  readonly dailyTokens: { readonly bot: number | null; readonly user: number | null }
  /** What the bot says when the model is down, slow, refused or over budget. */
  readonly fallback: string
}

export const DEFAULT_AI_FALLBACK = "Sorry, I cannot think right now. Please try again in a moment."
export const MAX_MEMORY_TURNS = 50

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)
const int = (v: unknown, min: number, max: number, dflt: number): number =>
  typeof v === "number" && Number.isInteger(v) && v >= min && v <= max ? v : dflt
const budget = (v: unknown): number | null => (typeof v === "number" && Number.isInteger(v) && v > 0 ? v : null)

/** The bot's AI settings, or null when it has no `ai` section (it then answers from its templates only). */
export const parseAiConfig = (raw: unknown): AiConfig | null => {
  if (!isObject(raw) || raw["enabled"] === false) return null
  const daily = isObject(raw["dailyTokens"]) ? raw["dailyTokens"] : {}
  const str = (k: string) => (typeof raw[k] === "string" && (raw[k] as string).length > 0 ? (raw[k] as string) : null)
  return {
    model: str("model") ?? "botfleet-stub",
    baseURL: str("baseURL"),
    apiKey: str("apiKey"),
    systemPrompt: str("systemPrompt"),
    memoryTurns: int(raw["memoryTurns"], 0, MAX_MEMORY_TURNS, 8),
    maxReplyTokens: int(raw["maxReplyTokens"], 16, 4096, 400),
    timeoutMs: int(raw["timeoutMs"], 100, 120_000, 15_000),
    dailyTokens: { bot: budget(daily["bot"]), user: budget(daily["user"]) },
    fallback: str("fallback") ?? DEFAULT_AI_FALLBACK
  }
}

const Text = (max: number) =>
  Schema.String.pipe(Schema.minLength(1, { message: () => "must not be empty" }), Schema.maxLength(max, { message: () => `must be at most ${max} characters` }))
const IntIn = (min: number, max: number) =>
  Schema.Number.pipe(Schema.int({ message: () => "must be a whole number" }), Schema.between(min, max, { message: () => `must be from ${min} to ${max}` }))

/** What `bots configure` accepts under `ai` (a clear `apiKey` is sealed before it is recorded). */
export const AiConfigSchema = Schema.Struct({
  enabled: Schema.optionalWith(Schema.Boolean, { exact: true }),
  model: Schema.optionalWith(Text(200), { exact: true }),
  baseURL: Schema.optionalWith(
    Schema.String.pipe(Schema.pattern(/^https?:\/\/[^\s]+$/, { message: () => "must be an http(s) URL, e.g. http://127.0.0.1:11434/v1" })),
    { exact: true }
  ),
  apiKey: Schema.optionalWith(Text(4096), { exact: true }),
  systemPrompt: Schema.optionalWith(Text(4000), { exact: true }),
  memoryTurns: Schema.optionalWith(IntIn(0, MAX_MEMORY_TURNS), { exact: true }),
  maxReplyTokens: Schema.optionalWith(IntIn(16, 4096), { exact: true }),
  timeoutMs: Schema.optionalWith(IntIn(100, 120_000), { exact: true }),
  dailyTokens: Schema.optionalWith(
    Schema.Struct({ bot: Schema.optionalWith(IntIn(1, 1_000_000_000), { exact: true }), user: Schema.optionalWith(IntIn(1, 1_000_000_000), { exact: true }) }),
    { exact: true }
  ),
  fallback: Schema.optionalWith(Text(4096), { exact: true })
})
