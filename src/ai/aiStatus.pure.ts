import type { Json } from "../actors/decider/mergePatch.js"
import { BOT_USAGE_KEY, readUsage, tokensOn } from "./aiState.pure.js"

/** What `status` and `bots list --json` show of a bot's AI replies (from its folded `ai:bot` entry). */
export interface AiStatus {
  /** Model replies since the bot began. */
  readonly replies: number
  /** Tokens used on `day` (UTC), the day the budget counts. */
  readonly tokensToday: number
  readonly day: string
  /** Fallbacks by reason since the bot began (unavailable, timeout, over_budget, unknown...). */
  readonly fallbacks: Readonly<Record<string, number>>
  readonly lastFallback: { readonly reason: string; readonly at: string } | null
}

/** The bot's AI status, or null when it never answered nor fell back. */
export const aiStatusOf = (read: (key: string) => Json | undefined, today: string): AiStatus | null => {
  const entry = read(BOT_USAGE_KEY)
  if (entry === undefined) return null
  const u = readUsage(entry, today)
  return { replies: u.replies, tokensToday: tokensOn(u, today), day: today, fallbacks: u.fallbacks, lastFallback: u.lastFallback }
}

/** One line of `status`: `replies 12, tokens today 3400, fallbacks timeout 2 unknown 1 (last: timeout at …)`. */
export const aiStatusLine = (s: AiStatus): string => {
  const fallbacks = Object.entries(s.fallbacks).map(([k, n]) => `${k} ${n}`).join(", ")
  return `replies ${s.replies}, tokens today ${s.tokensToday}, fallbacks ${fallbacks || "none"}${s.lastFallback ? ` (last: ${s.lastFallback.reason} at ${s.lastFallback.at})` : ""}`
}
