import { Duration, Effect } from "effect"
import type { SqlClient } from "../db/sql.js"
import type { EventLogService } from "../events/eventLog.js"
import { makeProjectionPauses } from "../projections/pauses.js"
import { makeProjector } from "../projections/projector.js"
import { runProjectors } from "../projections/runner.js"

/**
 * The projections of this node. On a server: one projector per partition, blocking reads
 * (runner.ts). On PGlite, which has ONE connection shared with the bots' appends, one fiber visits
 * the partitions in turn and pauses `idle` once all are caught up: sixteen fibers polling would
 * take the connection from the bots (measured: replies went from ~1 s to ~10 s on a busy 2-core
 * machine). Projection lag in embedded mode is therefore up to about `idle`.
 */
export const runNodeProjections = (o: {
  readonly log: EventLogService
  readonly sql: SqlClient
  readonly embedded: boolean
  readonly idle?: Duration.DurationInput
}): Effect.Effect<never> => {
  if (!o.embedded) return runProjectors({ log: o.log, sql: o.sql })
  const projectors = Array.from({ length: o.log.partitions }, (_, partition) => makeProjector({ log: o.log, sql: o.sql, partition, blockMs: 0 }))
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
