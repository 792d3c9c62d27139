import { Clock, Effect } from "effect"

/**
 * What the log says about projectors that fail and retry: one warning when the first partition
 * pauses (with why), one line when the last paused partition projects again (with how long it
 * took), and the partitions in between at debug level. A Postgres outage seen by sixteen
 * projectors retrying with a backoff is two lines, not one per partition per try.
 */
export interface ProjectionPauses {
  readonly failed: (partition: number, error: { readonly message: string }) => Effect.Effect<void>
  readonly succeeded: (partition: number) => Effect.Effect<void>
  /** Partitions currently paused, in order. */
  readonly paused: () => ReadonlyArray<number>
}

export const makeProjectionPauses = (): ProjectionPauses => {
  const paused = new Map<number, number>()
  let since: number | null = null
  let failures = 0
  return {
    failed: (partition, error) =>
      Effect.gen(function* () {
        failures++
        if (paused.has(partition)) return
        const now = yield* Clock.currentTimeMillis
        paused.set(partition, now)
        if (since === null) {
          since = now
          failures = 1
          yield* Effect.logWarning(`projections paused: ${error.message}`).pipe(Effect.annotateLogs({ partition }))
        } else {
          yield* Effect.logDebug(`projector of partition ${partition} paused: ${error.message}`)
        }
      }),
    succeeded: (partition) =>
      Effect.gen(function* () {
        if (!paused.delete(partition)) return
        if (paused.size > 0) return yield* Effect.logDebug(`projector of partition ${partition} resumed`)
        const now = yield* Clock.currentTimeMillis
        const pausedForMs = since === null ? 0 : now - since
        since = null
        yield* Effect.logInfo("projections resumed").pipe(Effect.annotateLogs({ pausedForMs, failedTries: failures }))
      }),
    paused: () => [...paused.keys()].sort((a, b) => a - b)
  }
}
