import { Context, Data } from "effect"
import type { Effect } from "effect"

/** One update waiting in a bot's inbox. `id` is its position: ordered, unique per bot. */
export interface InboxEntry {
  readonly id: string
  readonly update: unknown
  /** When the update entered the inbox (ISO-8601): the time the bot's decision records. */
  readonly receivedAt: string
}

export interface InboxDeadLetter {
  readonly entryId: string
  readonly update: unknown
  readonly reason: string
  readonly at: string
}

/** The inbox store could not be reached or failed. Retryable. */
export class InboxUnavailable extends Data.TaggedError("InboxUnavailable")<{
  readonly operation: string
  readonly cause: unknown
}> {
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `inbox unavailable during ${this.operation}: ${cause}`
  }
}

/** The update is not one an inbox accepts (not an object with a numeric update_id). Not retryable. */
export class InvalidUpdate extends Data.TaggedError("InvalidUpdate")<{ readonly botId: string; readonly reason: string }> {
  override get message() {
    return `bot ${this.botId}: invalid update: ${this.reason}`
  }
}

/**
 * Per-bot inboxes: where updates wait for their actor (DESIGN.md data flow).
 *
 * Guarantees: `enqueue` returns only once the update is durably in the inbox (the ingress answers
 * Telegram 2xx after it); entries of one bot are read in enqueue order; an entry stays readable
 * until the bot's state cursor is past it (the actor advances that cursor inside the append of the
 * events the entry caused, which is what makes handling exactly-once, not anything in here).
 * Duplicates are NOT filtered here: the decider drops them, by update_id, from recorded state.
 */
export interface InboxService {
  readonly enqueue: (botId: string, update: unknown) => Effect.Effect<string, InboxUnavailable | InvalidUpdate>
  /** Entries strictly after `after` (from the start when null), oldest first. */
  readonly readAfter: (botId: string, after: string | null, count: number) => Effect.Effect<ReadonlyArray<InboxEntry>, InboxUnavailable>
  /**
   * Resolves when the bot may have entries after `after`, or after `maxWaitMs`; a hint, not a
   * guarantee. An adapter that already fetched the entries may return them (up to `count`, in
   * order, all after `after`), saving the caller a read; otherwise the caller reads.
   */
  readonly waitFor: (
    botId: string,
    after: string | null,
    maxWaitMs: number,
    count?: number
  ) => Effect.Effect<ReadonlyArray<InboxEntry> | void, InboxUnavailable>
  /** The id of the newest entry in the bot's inbox, or null when it holds none. */
  readonly headId: (botId: string) => Effect.Effect<string | null, InboxUnavailable>
  /** How many entries wait after `after`, counted up to `cap`. */
  readonly lag: (botId: string, after: string | null, cap?: number) => Effect.Effect<number, InboxUnavailable>
  /** Drops entries at or below `upTo` (already handled and recorded). */
  readonly trim: (botId: string, upTo: string) => Effect.Effect<void, InboxUnavailable>
  /** Keeps an entry the bot could not handle, with the reason (the bot's stream records it too). */
  readonly deadLetter: (botId: string, entry: InboxEntry, reason: string) => Effect.Effect<void, InboxUnavailable>
  readonly readDeadLetters: (botId: string) => Effect.Effect<ReadonlyArray<InboxDeadLetter>, InboxUnavailable>
  /**
   * Gives a dead letter another chance: its update goes back at the END of the bot's inbox as a
   * new entry (so it is past the bot's cursor and read again) and the dead letter is removed, in
   * one atomic step. Resolves with the new entry's id, or null when the bot has no dead letter for
   * `entryId` (never existed, or already retried): a second retry of the same entry enqueues nothing.
   * The decider handles the update again because `UpdateFailed` does not mark its update_id as seen.
   */
  readonly retryDeadLetter: (botId: string, entryId: string) => Effect.Effect<string | null, InboxUnavailable>
  /**
   * Deletes a dead letter for good, every copy of it (`users forget`: an update of a forgotten
   * user, kept in clear, must not outlive the erasure). Resolves with the copies deleted (0: none).
   */
  readonly dropDeadLetter: (botId: string, entryId: string) => Effect.Effect<number, InboxUnavailable>
  readonly close: Effect.Effect<void>
}

export class Inbox extends Context.Tag("botfleet/Inbox")<Inbox, InboxService>() {}

/** Checks what every adapter requires of an update before storing it. */
export const checkUpdate = (botId: string, update: unknown): InvalidUpdate | null => {
  if (typeof update !== "object" || update === null || Array.isArray(update)) {
    return new InvalidUpdate({ botId, reason: "an update must be a JSON object" })
  }
  const id = (update as { update_id?: unknown }).update_id
  if (typeof id !== "number" || !Number.isSafeInteger(id)) return new InvalidUpdate({ botId, reason: "update_id must be an integer" })
  return null
}

/** Orders inbox ids (`<ms>-<seq>`, numerically by part): negative when `a` comes first. */
export const compareInboxIds = (a: string, b: string): number => {
  const [am = "0", as = "0"] = a.split("-")
  const [bm = "0", bs = "0"] = b.split("-")
  return Number(am) - Number(bm) || Number(as) - Number(bs)
}
