import { Effect, Either, Schedule } from "effect"
import type { Duration } from "effect"
import { outageBackoff } from "../health/backoff.js"
import { makeProjectionPauses } from "./pauses.js"
import type { ProjectorOptions } from "./projector.js"
import { makeProjector } from "./projector.js"

export interface RunProjectorsOptions extends Omit<ProjectorOptions, "partition"> {
  /** Partitions this node projects (default: all of the log's). */
  readonly partitions?: ReadonlyArray<number>
  /** Pauses after failed steps: from `base` (default 200 ms), doubling, capped at `cap` (default 5 s). */
  readonly backoff?: { readonly base?: Duration.DurationInput; readonly cap?: Duration.DurationInput }
  /** Pause when caught up, for adapters whose group reads do not block (default 50 ms). */
  readonly idleSleep?: Duration.DurationInput
  /**
   * Pause after a step that caught up with a part of a batch (default 100 ms): what arrives
   * meanwhile is projected together in the next transaction instead of one transaction each.
   */
  readonly coalesce?: Duration.DurationInput
}

/**
 * Runs one projector per partition until interrupted. A failing step (Postgres or the log
 * unreachable, a statement refused) pauses that projector with a jittered exponential backoff and
 * it tries again, for as long as it takes: the checkpoint makes every retry safe, and it resumes
 * where it stopped once the store is back. The log says once that projections paused and once
 * that they resumed (pauses.ts); lag/stall detection (lag.ts) reports a projector that keeps
 * failing. One partition's trouble never stops the others.
 *
 * Why the pause after a partial batch: a transaction costs about twenty round trips whatever it
 * holds, so under a steady trickle (a few events per partition every few milliseconds) projecting
 * each as it comes made the projectors most of the main thread's work. The first event after a
 * quiet spell is projected at once (the blocking read returns with it); the ones right behind it
 * wait at most `coalesce` and go in one transaction. A full batch is followed at once.
 */
export const runProjectors = (opts: RunProjectorsOptions): Effect.Effect<never> => {
  const partitions = opts.partitions ?? Array.from({ length: opts.log.partitions }, (_, p) => p)
  const pauses = makeProjectionPauses()
  const one = (partition: number) =>
    Effect.gen(function* () {
      const projector = makeProjector({ ...opts, partition })
      const backoff = yield* Schedule.driver(outageBackoff(opts.backoff))
      for (;;) {
        const r = yield* Effect.either(projector.step)
        if (Either.isLeft(r)) {
          yield* pauses.failed(partition, r.left)
          // the schedule has no end: an outage is waited out
          yield* backoff.next(r.left).pipe(Effect.ignore)
          continue
        }
        yield* pauses.succeeded(partition)
        yield* backoff.reset
        // adapters that cannot block on an empty group (memory) must not spin
        if (r.right.caughtUp && r.right.projected === 0) yield* Effect.sleep(opts.idleSleep ?? "50 millis")
        else if (r.right.caughtUp) yield* Effect.sleep(opts.coalesce ?? "100 millis")
      }
    })
  return Effect.forEach(partitions, one, { concurrency: "unbounded", discard: true }).pipe(Effect.zipRight(Effect.never))
}
