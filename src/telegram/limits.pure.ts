/**
 * Telegram's sending limits as token buckets, pure: time comes in as an argument, so the same
 * limiter drives the sender (wait before sending) and the sandbox (answer 429), and unit
 * tests can run hours of traffic in microseconds.
 */

/** One limit: `rate` sends per `perMs`, with up to `burst` sends allowed back to back. */
export interface Limit {
  readonly rate: number
  readonly perMs: number
  readonly burst: number
}

/** The limits Telegram documents (bot API FAQ), each configurable. */
export interface SendLimits {
  /** All chats of one bot together: ~30 messages per second; null: no limit across chats. */
  readonly perBot: Limit | null
  /** One private chat: ~1 message per second, a small burst tolerated. */
  readonly perChat: Limit
  /** One group or channel: ~20 messages per minute. */
  readonly perGroup: Limit
}

export const defaultSendLimits: SendLimits = {
  perBot: { rate: 30, perMs: 1000, burst: 30 },
  perChat: { rate: 1, perMs: 1000, burst: 3 },
  perGroup: { rate: 20, perMs: 60_000, burst: 20 }
}

/** Group and channel chats have negative ids in the Bot API; users and private chats positive ones. */
export const isGroupChat = (chatId: number | string): boolean =>
  typeof chatId === "number" ? chatId < 0 : chatId.startsWith("-") || chatId.startsWith("@")

interface Bucket {
  tokens: number
  at: number
}

/** The buckets one send draws from: the bot's, and its chat's (group or private limit). */
export const bucketsFor = (limits: SendLimits, botKey: string, chatId: number | string): ReadonlyArray<readonly [string, Limit]> => {
  const chat: readonly [string, Limit] = isGroupChat(chatId) ? [`g:${botKey}:${chatId}`, limits.perGroup] : [`c:${botKey}:${chatId}`, limits.perChat]
  return limits.perBot === null ? [chat] : [[`b:${botKey}`, limits.perBot], chat]
}

/**
 * The limits from the SEND_LIMIT_* settings; a per-bot rate of 0 lifts the limit across chats (a
 * bot Telegram allows more, e.g. with paid broadcasts). Bursts as Telegram tolerates them: a
 * bot's and a group's whole rate, 3 for a private chat.
 */
export const sendLimitsOf = (c: { readonly perBotPerSecond: number; readonly perChatPerSecond: number; readonly perGroupPerMinute: number }): SendLimits => ({
  perBot: c.perBotPerSecond === 0 ? null : { rate: c.perBotPerSecond, perMs: 1000, burst: c.perBotPerSecond },
  perChat: { rate: c.perChatPerSecond, perMs: 1000, burst: Math.max(3, c.perChatPerSecond) },
  perGroup: { rate: c.perGroupPerMinute, perMs: 60_000, burst: c.perGroupPerMinute }
})

/**
 * A set of token buckets keyed by name. `take` is all-or-nothing across the buckets it is given:
 * a send either draws one token from each, or draws none and learns how long to wait, so a send
 * held back by its chat never uses up the bot's allowance meanwhile.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>()

  /**
   * Takes one token from every bucket at time `now` (ms). Returns 0 when taken, otherwise the
   * milliseconds to wait until all of them would have a token (nothing is taken then).
   */
  take(keys: ReadonlyArray<readonly [string, Limit]>, now: number): number {
    let wait = 0
    for (const [key, limit] of keys) {
      const b = this.refill(key, limit, now)
      if (b.tokens < 1) wait = Math.max(wait, Math.ceil(((1 - b.tokens) * limit.perMs) / limit.rate))
    }
    if (wait > 0) return wait
    for (const [key] of keys) this.buckets.get(key)!.tokens -= 1
    return 0
  }

  /** Forgets buckets that have been full again for a while, so memory follows active chats only. */
  sweep(now: number, limitsByPrefix: (key: string) => Limit): number {
    let removed = 0
    for (const [key, b] of this.buckets) {
      const limit = limitsByPrefix(key)
      const full = b.tokens + ((now - b.at) * limit.rate) / limit.perMs >= limit.burst
      if (full) {
        this.buckets.delete(key)
        removed++
      }
    }
    return removed
  }

  get size(): number {
    return this.buckets.size
  }

  private refill(key: string, limit: Limit, now: number): Bucket {
    let b = this.buckets.get(key)
    if (!b) {
      b = { tokens: limit.burst, at: now }
      this.buckets.set(key, b)
      return b
    }
    if (now > b.at) {
      b.tokens = Math.min(limit.burst, b.tokens + ((now - b.at) * limit.rate) / limit.perMs)
      b.at = now
    }
    return b
  }
}

/** The limit a bucket key was created with (its prefix says which), for `sweep`. */
export const limitOfKey = (limits: SendLimits) => (key: string): Limit =>
  key.startsWith("b:") && limits.perBot !== null ? limits.perBot : key.startsWith("g:") ? limits.perGroup : limits.perChat

/** Methods that put a message in a chat and count against the limits. */
export const isSendingMethod = (method: string): boolean =>
  (method.startsWith("send") && method !== "sendChatAction") || /^(copy|forward)Messages?$/.test(method)
