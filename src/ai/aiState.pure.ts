import type { Json } from "../actors/decider/mergePatch.js"

/**
 * What a bot remembers for its AI replies, as keyed state entries folded from events (pure):
 * - `c:<chat>`: the conversation of a chat, its last turns verbatim and a rolling summary of the
 *   older ones (AiReplied adds a turn, ConversationSummarized folds the oldest into the summary);
 * - `ai:bot` and `ai:u:<user>`: tokens used on the current UTC day (budgets) and counts of replies
 *   and fallbacks (shown by `status`).
 * Bounded whatever the chat's length: at most MAX_TURNS turns of at most MAX_TURN_CHARS each, a
 * summary of at most MAX_SUMMARY_CHARS.
 */

export const conversationKey = (chatId: number): string => `c:${chatId}`
export const BOT_USAGE_KEY = "ai:bot"
export const userUsageKey = (userId: number): string => `ai:u:${userId}`

export const MAX_TURNS = 50
export const MAX_TURN_CHARS = 2000
export const MAX_SUMMARY_CHARS = 1200

export interface Turn {
  readonly user: string
  readonly assistant: string
}

export interface Conversation {
  readonly turns: ReadonlyArray<Turn>
  readonly summary: string
}

export const FALLBACK_REASONS = ["unavailable", "timeout", "rate_limited", "refused", "over_budget", "unknown", "not_configured"] as const
export type FallbackReason = (typeof FALLBACK_REASONS)[number]

export interface Usage {
  /** The UTC day (`YYYY-MM-DD`) `tokens` counts. */
  readonly day: string
  readonly tokens: number
  readonly replies: number
  readonly fallbacks: Readonly<Record<string, number>>
  readonly lastFallback: { readonly reason: string; readonly at: string } | null
}

const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s)
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

export const emptyConversation: Conversation = { turns: [], summary: "" }

export const readConversation = (v: Json | undefined): Conversation => {
  if (!isObject(v)) return emptyConversation
  const turns = Array.isArray(v["turns"])
    ? (v["turns"] as unknown[]).flatMap((t) => (isObject(t) && typeof t["user"] === "string" && typeof t["assistant"] === "string" ? [{ user: t["user"], assistant: t["assistant"] }] : []))
    : []
  return { turns, summary: typeof v["summary"] === "string" ? v["summary"] : "" }
}

export const conversationEntry = (c: Conversation): Json => ({ turns: c.turns.map((t) => ({ user: t.user, assistant: t.assistant })), summary: c.summary })

/** A turn added; past MAX_TURNS the oldest goes (a hard bound even if no summary was recorded). */
export const addTurn = (c: Conversation, turn: Turn): Conversation => {
  const turns = [...c.turns, { user: clip(turn.user, MAX_TURN_CHARS), assistant: clip(turn.assistant, MAX_TURN_CHARS) }]
  return { ...c, turns: turns.length > MAX_TURNS ? turns.slice(turns.length - MAX_TURNS) : turns }
}

/** The oldest `dropped` turns leave; the summary becomes `summary`. */
export const summarized = (c: Conversation, summary: string, dropped: number): Conversation => ({
  turns: c.turns.slice(Math.max(0, dropped)),
  summary: clip(summary, MAX_SUMMARY_CHARS)
})

/**
 * The rolling summary after the oldest turns leave the verbatim memory: a compact line per turn
 * appended to the old summary, cut from the front (oldest first) to MAX_SUMMARY_CHARS. Extractive,
 * so it costs no model call and is the same on every run.
 */
export const rollSummary = (summary: string, dropped: ReadonlyArray<Turn>): string => {
  const lines = dropped.map((t) => `User: ${clip(t.user.replace(/\s+/g, " "), 120)} / Bot: ${clip(t.assistant.replace(/\s+/g, " "), 120)}`)
  const all = [summary, ...lines].filter((l) => l.length > 0).join("\n")
  return all.length <= MAX_SUMMARY_CHARS ? all : `…${all.slice(all.length - MAX_SUMMARY_CHARS + 1)}`
}

/** How many of the oldest turns must leave so that at most `keep` remain after one more is added. */
export const turnsToDrop = (c: Conversation, keep: number): number => Math.max(0, c.turns.length + 1 - keep)

export const emptyUsage = (day: string): Usage => ({ day, tokens: 0, replies: 0, fallbacks: {}, lastFallback: null })

export const readUsage = (v: Json | undefined, day: string): Usage => {
  if (!isObject(v)) return emptyUsage(day)
  const fallbacks: Record<string, number> = {}
  if (isObject(v["fallbacks"])) for (const [k, n] of Object.entries(v["fallbacks"])) if (typeof n === "number") fallbacks[k] = n
  const last = isObject(v["lastFallback"]) && typeof v["lastFallback"]["reason"] === "string" && typeof v["lastFallback"]["at"] === "string"
    ? { reason: v["lastFallback"]["reason"], at: v["lastFallback"]["at"] }
    : null
  const stored = typeof v["day"] === "string" ? v["day"] : day
  return {
    day: stored,
    tokens: typeof v["tokens"] === "number" ? v["tokens"] : 0,
    replies: typeof v["replies"] === "number" ? v["replies"] : 0,
    fallbacks,
    lastFallback: last
  }
}

export const usageEntry = (u: Usage): Json => ({
  day: u.day,
  tokens: u.tokens,
  replies: u.replies,
  fallbacks: { ...u.fallbacks },
  lastFallback: u.lastFallback === null ? null : { reason: u.lastFallback.reason, at: u.lastFallback.at }
})

/** Tokens used on `day`: a new day starts from zero (the budget is per UTC day). */
export const tokensOn = (u: Usage, day: string): number => (u.day === day ? u.tokens : 0)

export const withTokens = (u: Usage, day: string, tokens: number): Usage => ({ ...u, day, tokens: tokensOn(u, day) + tokens, replies: u.replies + 1 })

export const withFallback = (u: Usage, day: string, reason: string, at: string): Usage => ({
  ...u,
  day,
  tokens: tokensOn(u, day),
  fallbacks: { ...u.fallbacks, [reason]: (u.fallbacks[reason] ?? 0) + 1 },
  lastFallback: { reason, at }
})

/** Which budget a new reply would break, if any (before the call: a reply in progress may overshoot by one reply). */
export const overBudget = (
  budgets: { readonly bot: number | null; readonly user: number | null },
  used: { readonly bot: number; readonly user: number }
): "bot" | "user" | null => (budgets.bot !== null && used.bot >= budgets.bot ? "bot" : budgets.user !== null && used.user >= budgets.user ? "user" : null)

/** The UTC day of a recorded ISO time. */
export const dayOf = (iso: string): string => iso.slice(0, 10)
