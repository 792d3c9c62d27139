import { Data, Duration, Effect } from "effect"
import type { BotApi, BotApiError } from "./botApi.js"

/**
 * Long polling for one bot. Run it only while holding the bot's lease: Telegram answers 409 to a
 * second poller, and to polling while a webhook is set.
 *
 * Loop: `getUpdates(offset, timeout)` → hand the updates to `deliver` (which returns once they are
 * durably in the inbox) → persist `offset = last update_id + 1` → repeat. Telegram forgets updates
 * below the offset on the next call, so an update is confirmed only after it is stored: a crash
 * anywhere re-fetches at worst what was stored but not yet confirmed, and the decider's
 * (bot, update_id) dedupe drops those. Nothing is lost, nothing handled twice.
 */

/** The bot's token was revoked (401): polling stops for good instead of looping. */
export class PollingUnauthorized extends Data.TaggedError("PollingUnauthorized")<{ readonly botId: string }> {
  override get message() {
    return `bot ${this.botId}: Telegram refused the token (401); polling stopped`
  }
}

/**
 * Telegram answered getUpdates with 409 Conflict `times` times in a row: a webhook was set again
 * after the poller deleted it, or another program polls the same token. The bot cannot get its
 * updates; the node records it as the bot's crash (BotCrashed with this message) and restarts it
 * (deleting the webhook again), so `botfleet status` shows why.
 */
export class PollingConflict extends Data.TaggedError("PollingConflict")<{ readonly botId: string; readonly times: number; readonly description: string }> {
  override get message() {
    return (
      `bot ${this.botId}: Telegram answered getUpdates with 409 Conflict ${this.times} times in a row (${this.description}): ` +
      "another program is polling this token, or a webhook was set again; stop the other program (or delete its webhook)"
    )
  }
}

/** 409s in a row that end polling (one can be a previous poller's last request ending). */
export const CONFLICTS_BEFORE_CRASH = 3

/** Where the next offset is kept between runs. */
export interface OffsetStore {
  readonly load: (botId: string) => Effect.Effect<number | null, unknown>
  readonly save: (botId: string, offset: number) => Effect.Effect<void, unknown>
}

export interface PollerOptions<E> {
  readonly botId: string
  readonly api: BotApi
  readonly offsets: OffsetStore
  /** Stores updates durably (the bot's inbox); fails when the store is unreachable. */
  readonly deliver: (updates: ReadonlyArray<{ readonly update_id: number }>) => Effect.Effect<void, E>
  /** Long-poll seconds asked of Telegram (default 25). */
  readonly timeoutS?: number
  readonly allowedUpdates?: ReadonlyArray<string>
  /**
   * Least time between two empty polls. A server that answers getUpdates at once instead of
   * holding the poll would otherwise make this loop spin a CPU.
   */
  readonly minEmptyPollMs?: number
  /** First pause after a failure; doubles up to `maxBackoffMs`. */
  readonly backoffMs?: number
  readonly maxBackoffMs?: number
  /** Told about every failure it rides out (for logs and metrics). */
  readonly onError?: (e: BotApiError | E | unknown) => void
}

/**
 * Runs until interrupted (prompt: the in-flight HTTP request is aborted), until the token is
 * refused (fails with `PollingUnauthorized`) or until getUpdates keeps answering 409 (fails with
 * `PollingConflict`). Every other failure is ridden out with backoff.
 *
 * Before the first poll it deletes the bot's webhook, keeping pending updates, as telegraf's
 * `launch()` does: Telegram refuses getUpdates (409) while a webhook is set, so a bot that ran
 * on webhooks before would otherwise never get an update.
 */
export const runPoller = <E>(o: PollerOptions<E>): Effect.Effect<never, PollingUnauthorized | PollingConflict> =>
  Effect.gen(function* () {
    const timeoutS = o.timeoutS ?? 25
    const minEmpty = o.minEmptyPollMs ?? 1000
    const base = o.backoffMs ?? 500
    let pause = base
    let offset: number | null = yield* o.offsets.load(o.botId).pipe(Effect.orElseSucceed(() => null))
    const failed = (e: unknown, waitMs?: number) =>
      Effect.gen(function* () {
        o.onError?.(e)
        yield* Effect.sleep(Duration.millis(waitMs ?? pause))
        pause = Math.min(pause * 2, o.maxBackoffMs ?? 30_000)
      })
    for (;;) {
      const deleted = yield* Effect.either(o.api.call("deleteWebhook", { drop_pending_updates: false }))
      if (deleted._tag === "Right") break
      const e = deleted.left
      if (e._tag === "TelegramRefused" && e.errorCode === 401) return yield* Effect.fail(new PollingUnauthorized({ botId: o.botId }))
      yield* failed(e, e._tag === "RateLimited" ? e.retryAfterS * 1000 : undefined)
    }
    pause = base
    let conflicts = 0
    for (;;) {
      const started = Date.now()
      const params: Record<string, unknown> = { timeout: timeoutS, ...(offset !== null ? { offset } : {}), ...(o.allowedUpdates ? { allowed_updates: o.allowedUpdates } : {}) }
      const answer = yield* Effect.either(o.api.call("getUpdates", params))
      if (answer._tag === "Left") {
        const e = answer.left
        if (e._tag === "TelegramRefused" && e.errorCode === 401) return yield* Effect.fail(new PollingUnauthorized({ botId: o.botId }))
        if (e._tag === "TelegramRefused" && e.errorCode === 409) {
          conflicts++
          if (conflicts >= CONFLICTS_BEFORE_CRASH) return yield* Effect.fail(new PollingConflict({ botId: o.botId, times: conflicts, description: e.description }))
        } else conflicts = 0
        yield* failed(e, e._tag === "RateLimited" ? e.retryAfterS * 1000 : undefined)
        continue
      }
      conflicts = 0
      const updates = (Array.isArray(answer.right) ? answer.right : []) as ReadonlyArray<{ update_id: number }>
      if (updates.length === 0) {
        pause = base
        const elapsed = Date.now() - started
        if (elapsed < minEmpty) yield* Effect.sleep(Duration.millis(minEmpty - elapsed))
        continue
      }
      const stored = yield* Effect.either(o.deliver(updates))
      if (stored._tag === "Left") {
        // not stored: do not move the offset, Telegram keeps the updates for the next call
        yield* failed(stored.left)
        continue
      }
      offset = updates[updates.length - 1]!.update_id + 1
      const saved = yield* Effect.either(o.offsets.save(o.botId, offset))
      if (saved._tag === "Left") o.onError?.(saved.left)
      pause = base
    }
  })

/** An offset store in memory (tests, the sandbox demo without Redis). */
export const memoryOffsetStore = (): OffsetStore & { readonly offsets: Map<string, number> } => {
  const offsets = new Map<string, number>()
  return {
    offsets,
    load: (botId) => Effect.sync(() => offsets.get(botId) ?? null),
    save: (botId, offset) => Effect.sync(() => void offsets.set(botId, offset))
  }
}
