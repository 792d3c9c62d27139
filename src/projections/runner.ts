import { Effect } from "effect"
import type { Duration } from "effect"
import type { ProjectorOptions } from "./projector.js"
import { makeProjector } from "./projector.js"

export interface RunProjectorsOptions extends Omit<ProjectorOptions, "partition"> {
  /** Partitions this node projects (default: all of the log's). */
  readonly partitions?: ReadonlyArray<number>
  /** Pause after a failed step before trying again (default 1 s). */
  readonly retryAfter?: Duration.DurationInput
  /** Pause when caught up, for adapters whose group reads do not block (default 50 ms). */
  readonly idleSleep?: Duration.DurationInput
}

/**
 * Runs one projector per partition until interrupted. A failing step (Postgres or the log
 * unreachable) is logged and retried after a pause: the checkpoint makes the retry safe, and
 * lag/stall detection (lag.ts) reports a projector that keeps failing. One partition's trouble
 * never stops the others.
 */
export const runProjectors = (opts: RunProjectorsOptions): Effect.Effect<never> => {
  const partitions = opts.partitions ?? Array.from({ length: opts.log.partitions }, (_, p) => p)
  const one = (partition: number) => {
    const projector = makeProjector({ ...opts, partition })
    return projector.step.pipe(
      // adapters that cannot block on an empty group (memory) must not spin
      Effect.tap((r) => (r.caughtUp && r.projected === 0 ? Effect.sleep(opts.idleSleep ?? "50 millis") : Effect.void)),
      Effect.catchAll((e) =>
        Effect.logWarning(`projector of partition ${partition}: ${e.message}`).pipe(Effect.zipRight(Effect.sleep(opts.retryAfter ?? "1 second")))
      ),
      Effect.forever
    )
  }
  return Effect.forEach(partitions, one, { concurrency: "unbounded", discard: true }).pipe(Effect.zipRight(Effect.never))
}
