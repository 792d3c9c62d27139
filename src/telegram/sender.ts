import { Effect, Either } from "effect"
import { recordRateLimited, recordWait } from "../metrics/threadStats.js"
import { isIdempotentMethod } from "./botApi.js"
import type { BotApiError } from "./botApi.js"
import { TokenBuckets, bucketsFor, defaultSendLimits, isSendingMethod, limitOfKey } from "./limits.pure.js"
import type { SendLimits } from "./limits.pure.js"

/**
 * The sender: every Bot API call a bot makes goes through it. It keeps Telegram's limits
 * (waiting rather than being refused), keeps each chat's messages in order, rides out 429s, and
 * retries 5xx/network failures only for methods that cannot duplicate a message.
 *
 * Why one slow bot never delays another: queues are per (bot, chat) and nothing is shared between
 * bots but the bucket map, whose operations are synchronous; a bot waiting on its limit or on a
 * 429 sleeps in its own promise chain.
 */

/** How a call ended, as the recorder writes it down. */
export type SendOutcome =
  | { readonly _tag: "Sent"; readonly result: unknown }
  /** Telegram refused (4xx), or kept answering 429 past the retry budget: it did not act. */
  | { readonly _tag: "Refused"; readonly errorCode: number; readonly description: string; readonly retryAfter?: number }
  /** A 5xx/network failure on a call that could duplicate: Telegram may or may not have acted. */
  | { readonly _tag: "Unknown"; readonly reason: string }

export type CallFn = (method: string, params: Readonly<Record<string, unknown>>) => Effect.Effect<unknown, BotApiError>

export interface SenderOptions {
  /** `false`: no client-side limiting (the server's 429s are still honoured). */
  readonly limits?: SendLimits | false
  /** 429s honoured per call before giving up (Telegram did not act, so giving up is safe). */
  readonly maxRateLimitRetries?: number
  /** Retries of an idempotent call after a 5xx/network failure, with doubling pauses from `backoffMs`. */
  readonly maxUnavailableRetries?: number
  readonly backoffMs?: number
  readonly now?: () => number
  readonly sleep?: (ms: number) => Promise<void>
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export class Sender {
  private readonly buckets = new TokenBuckets()
  private readonly tails = new Map<string, Promise<unknown>>()
  private limits: SendLimits | false
  private readonly now: () => number
  private readonly sleep: (ms: number) => Promise<void>
  private lastSweep = 0

  constructor(private readonly options: SenderOptions = {}) {
    this.limits = options.limits === undefined ? defaultSendLimits : options.limits
    this.now = options.now ?? Date.now
    this.sleep = options.sleep ?? defaultSleep
  }

  /**
   * Changes the limits kept from the next send on (live settings). Buckets keep their tokens: a
   * lower limit refills them more slowly, a higher one faster.
   */
  setLimits(limits: SendLimits): void {
    if (this.limits !== false) this.limits = limits
  }

  /**
   * Sends one call for `botKey`. Calls to the same chat of the same bot run one after the other in
   * the order `send` was called; calls to other chats or bots do not wait for them.
   */
  send(botKey: string, method: string, params: Readonly<Record<string, unknown>>, call: CallFn): Promise<SendOutcome> {
    const chatId = params["chat_id"]
    const laneKey = `${botKey}\u0000${typeof chatId === "number" || typeof chatId === "string" ? chatId : ""}`
    const previous = this.tails.get(laneKey) ?? Promise.resolve()
    const run = previous.then(() => this.attempt(botKey, method, params, call))
    const tail = run.catch(() => undefined)
    this.tails.set(laneKey, tail)
    void tail.then(() => {
      if (this.tails.get(laneKey) === tail) this.tails.delete(laneKey)
    })
    return run
  }

  private async attempt(botKey: string, method: string, params: Readonly<Record<string, unknown>>, call: CallFn): Promise<SendOutcome> {
    const chatId = params["chat_id"]
    const limited = this.limits && isSendingMethod(method) && (typeof chatId === "number" || typeof chatId === "string")
    let rateLimited = 0
    let unavailable = 0
    let pause = this.options.backoffMs ?? 200
    for (;;) {
      if (limited && this.limits) {
        for (let wait = this.take(botKey, chatId); wait > 0; wait = this.take(botKey, chatId)) {
          recordWait("limit", wait)
          await this.sleep(wait)
        }
      }
      const outcome = await Effect.runPromise(Effect.either(call(method, params)))
      if (Either.isRight(outcome)) return { _tag: "Sent", result: outcome.right }
      const e = outcome.left
      switch (e._tag) {
        case "TelegramRefused":
          return { _tag: "Refused", errorCode: e.errorCode, description: e.description }
        case "RateLimited":
          recordRateLimited()
          if (++rateLimited > (this.options.maxRateLimitRetries ?? 10)) {
            return { _tag: "Refused", errorCode: 429, description: e.description, retryAfter: e.retryAfterS }
          }
          // safe to repeat: a 429 means Telegram did not act
          recordWait("retry_after", Math.max(1, e.retryAfterS) * 1000)
          await this.sleep(Math.max(1, e.retryAfterS) * 1000)
          continue
        case "TelegramUnavailable":
          if (!isIdempotentMethod(method) || ++unavailable > (this.options.maxUnavailableRetries ?? 3)) {
            return { _tag: "Unknown", reason: e.message }
          }
          recordWait("backoff", pause)
          await this.sleep(pause)
          pause = Math.min(pause * 2, 10_000)
          continue
        default: {
          const never: never = e
          return never
        }
      }
    }
  }

  private take(botKey: string, chatId: number | string): number {
    const limits = this.limits as SendLimits
    const now = this.now()
    if (now - this.lastSweep > 60_000) {
      this.lastSweep = now
      this.buckets.sweep(now, limitOfKey(limits))
    }
    return this.buckets.take(bucketsFor(limits, botKey, chatId), now)
  }
}
