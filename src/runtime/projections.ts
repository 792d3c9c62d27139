import { Clock, Duration, Effect } from "effect"
import type { SqlClient } from "../db/sql.js"
import type { EventLogService } from "../events/eventLog.js"
import { makeProjectionPauses } from "../projections/pauses.js"
import { makeProjector } from "../projections/projector.js"
import type { ProjectorOptions } from "../projections/projector.js"
import { runProjectors } from "../projections/runner.js"

export interface NodeProjectionsOptions {
  readonly log: EventLogService
  readonly sql: SqlClient
  readonly embedded: boolean
  readonly idle?: Duration.DurationInput
  /** Told after each commit (metrics). */
  readonly onCommitted?: ProjectorOptions["onCommitted"]
}

/**
 * The projections of this node. On a server: one projector per partition, blocking reads
 * (runner.ts). On PGlite, which has ONE connection shared with the bots' appends, one fiber visits
 * the partitions in turn and pauses `idle` once all are caught up: sixteen fibers polling would
 * take the connection from the bots (measured: replies went from ~1 s to ~10 s on a busy 2-core
 * machine). Projection lag in embedded mode is therefore up to about `idle`.
 */
export const runNodeProjections = (o: NodeProjectionsOptions): Effect.Effect<never> => {
  const hook = o.onCommitted ? { onCommitted: o.onCommitted } : {}
  if (!o.embedded) return runProjectors({ log: o.log, sql: o.sql, ...hook })
  const projectors = Array.from({ length: o.log.partitions }, (_, partition) => makeProjector({ log: o.log, sql: o.sql, partition, blockMs: 0, ...hook }))
  const pauses = makeProjectionPauses()
  const round = Effect.forEach(
    projectors,
    (p, partition) =>
      p.step.pipe(
        Effect.tap(() => pauses.succeeded(partition)),
        Effect.map((r) => r.projected > 0 || !r.caughtUp),
        // a failed partition waits for the next round (at most `idle` away), as an idle one does
        Effect.catchAll((e) => pauses.failed(partition, e).pipe(Effect.as(false)))
      )
  )
  return round.pipe(
    Effect.flatMap((busy) => (busy.some((b) => b) ? Effect.void : Effect.sleep(o.idle ?? Duration.seconds(2)))),
    Effect.forever
  )
}

export interface CatchUpResult {
  /** Events projected by the catch-up. */
  readonly projected: number
  /** Partitions still behind when it ended (failing, or out of time). */
  readonly behind: ReadonlyArray<number>
}

/**
 * Projects what the log holds beyond the checkpoints, partition by partition, until every one is
 * caught up or `timeoutMs` has passed: run by a stopping node after its bots drained (their last
 * events, BotStopped included, are in the log) and before its stores close, so the projections
 * (and `botfleet status`) are complete after a normal stop. Safe beside other nodes' projectors:
 * the checkpoint's row lock decides who writes a batch (projector.ts). A partition that fails is
 * left behind, and named.
 */
export const catchUpProjections = (o: Omit<NodeProjectionsOptions, "embedded" | "idle"> & { readonly timeoutMs?: number }): Effect.Effect<CatchUpResult> =>
  Effect.gen(function* () {
    const hook = o.onCommitted ? { onCommitted: o.onCommitted } : {}
    const deadline = (yield* Clock.currentTimeMillis) + (o.timeoutMs ?? 30_000)
    let projected = 0
    const behind: number[] = []
    for (let partition = 0; partition < o.log.partitions; partition++) {
      const projector = makeProjector({ log: o.log, sql: o.sql, partition, blockMs: 0, ...hook })
      for (;;) {
        const left = deadline - (yield* Clock.currentTimeMillis)
        if (left <= 0) {
          behind.push(partition)
          break
        }
        // a store that hangs must not hold the stop past the deadline
        const r = yield* Effect.either(projector.step.pipe(Effect.timeout(Duration.millis(left))))
        if (r._tag === "Left") {
          yield* Effect.logWarning(`projector of partition ${partition} while stopping: ${r.left.message}`)
          behind.push(partition)
          break
        }
        projected += r.right.projected
        if (r.right.caughtUp && r.right.projected === 0 && r.right.deadLettered === 0) break
      }
    }
    return { projected, behind }
  })
