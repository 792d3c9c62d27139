import { Duration, Effect, Schedule } from "effect"

/**
 * The pause between two tries while a store is down: exponential from `base`, jittered (so a
 * fleet's loops do not all knock at the same instant when it comes back), capped at `cap`. Without
 * an end: an outage is waited out, however long; callers bound it themselves when they must.
 */
export const outageBackoff = (o: { readonly base?: Duration.DurationInput; readonly cap?: Duration.DurationInput } = {}) => {
  const cap = Duration.decode(o.cap ?? "5 seconds")
  return Schedule.exponential(o.base ?? "200 millis", 2).pipe(
    Schedule.jittered,
    Schedule.modifyDelay((d) => Duration.min(d, cap))
  )
}

/**
 * Retries `effect` while it fails with a `*Unavailable` error (a store that is down), with
 * `outageBackoff`, for at most `within` (default 30 s); other failures, and the last one, pass
 * through. For facts worth waiting a little for (a supervisor's lifecycle record), not forever.
 */
export const retryWhileUnavailable = (within: Duration.DurationInput = "30 seconds") =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.retry(effect, { schedule: outageBackoff().pipe(Schedule.upTo(within)), while: isUnavailable })

/** Whether an error says a store is unreachable (LogUnavailable, InboxUnavailable, SqlUnavailable...). */
export const isUnavailable = (e: unknown): boolean => {
  const tag = typeof e === "object" && e !== null ? ((e as { _tag?: unknown })._tag ?? (e as { name?: unknown }).name) : undefined
  return typeof tag === "string" && /Unavailable$/.test(tag)
}
