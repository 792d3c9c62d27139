import { Data } from "effect"

/**
 * The stream moved on since the writer read it. Retryable after re-reading the stream:
 * `actual` tells the writer how far behind it is.
 */
export class WrongExpectedVersion extends Data.TaggedError("WrongExpectedVersion")<{
  readonly botId: string
  readonly expected: number
  readonly actual: number
}> {
  override get message() {
    return `bot ${this.botId}: expected stream version ${this.expected}, but it is at ${this.actual}`
  }
}

/**
 * The writer's fencing token is not the bot's current one: another node took the lease.
 * Not retryable by this writer: it must stop writing for the bot.
 */
export class StaleFence extends Data.TaggedError("StaleFence")<{
  readonly botId: string
  readonly fence: number
  readonly current: number
}> {
  override get message() {
    return `bot ${this.botId}: fencing token ${this.fence} is stale (current ${this.current}); this node no longer owns the bot`
  }
}

/** Why an event (to append, or read back) is not a valid event. Never retryable. */
export type InvalidEventReason =
  | "UnknownType"
  | "UnknownSchemaVersion"
  | "MalformedJson"
  | "SchemaMismatch"
  | "MissingField"
  | "BadRequest"

export class InvalidEvent extends Data.TaggedError("InvalidEvent")<{
  readonly reason: InvalidEventReason
  readonly detail: string
  readonly type?: string | undefined
  readonly botId?: string | undefined
}> {
  override get message() {
    return `invalid event${this.type ? ` ${this.type}` : ""}${this.botId ? ` for bot ${this.botId}` : ""}: ${this.reason}: ${this.detail}`
  }
}

/** The log's backing store could not be reached or failed. Retryable. */
export class LogUnavailable extends Data.TaggedError("LogUnavailable")<{
  readonly operation: string
  readonly cause: unknown
}> {
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `event log unavailable during ${this.operation}: ${cause}`
  }
}

export type AppendError = WrongExpectedVersion | StaleFence | InvalidEvent | LogUnavailable

/** Errors a caller may retry (after re-reading, or after a pause). */
export const isRetryable = (e: AppendError): e is WrongExpectedVersion | LogUnavailable =>
  e._tag === "WrongExpectedVersion" || e._tag === "LogUnavailable"
