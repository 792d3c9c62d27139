import { Data } from "effect"

/**
 * Writing a batch to Postgres failed. `retryable` tells a transient failure (connection,
 * serialisation, server shutting down: the batch is tried again as is) from a data error (the
 * batch is retried one event at a time, and the event that fails alone is dead-lettered).
 */
export class ProjectionFailed extends Data.TaggedError("ProjectionFailed")<{
  readonly partition: number
  readonly stage: "checkpoint" | "owners" | "write"
  readonly retryable: boolean
  readonly cause: unknown
}> {
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `projection of partition ${this.partition} failed at ${this.stage}${this.retryable ? " (retryable)" : ""}: ${cause}`
  }
}

/** A rebuild could not run (unknown projection, archive as its own source, SQL failure). */
export class RebuildFailed extends Data.TaggedError("RebuildFailed")<{
  readonly projection: string
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `rebuild of ${this.projection} failed: ${this.reason}`
  }
}

/** SQLSTATE classes that say "try again", not "this data is bad". */
const TRANSIENT_CLASSES = ["08", "40", "53", "57", "58"]

/**
 * Refusals of the session, not of the data: a missing grant (42501) is fixed by the operator and
 * must never get an entry dead-lettered.
 */
const ENVIRONMENT_CODES = ["42501"]

/**
 * Whether a SQL error is transient (try the same work again later); errors without a SQLSTATE
 * (network, pool, a role the login cannot take) are transient.
 */
export const isTransientSqlError = (e: unknown): boolean => {
  // SqlUnavailable (pgSql.ts) says it itself: a closed client is not worth retrying
  if (typeof e === "object" && e !== null && (e as { _tag?: unknown })._tag === "SqlUnavailable") return (e as { retryable: boolean }).retryable
  const code = typeof e === "object" && e !== null && "code" in e ? String((e as { code: unknown }).code) : undefined
  if (code === undefined || !/^[0-9A-Z]{5}$/.test(code)) return true
  return TRANSIENT_CLASSES.includes(code.slice(0, 2)) || ENVIRONMENT_CODES.includes(code)
}
