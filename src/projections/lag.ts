import { Effect, Either } from "effect"
import type { LogUnavailable } from "../events/errors.js"
import type { EventLogService } from "../events/eventLog.js"
import type { SqlClient } from "../db/sql.js"
import { ProjectionFailed, isTransientSqlError } from "./errors.js"
import { PROJECTIONS } from "./mapping/rows.js"

export interface PartitionLag {
  readonly partition: number
  /** The projectors' checkpoint (null: nothing projected yet). */
  readonly checkpoint: string | null
  /** Log entries after the checkpoint, counted up to `cap`. */
  readonly waiting: number
  /** True when there are at least `waiting` entries (the count hit the cap). */
  readonly waitingCapped: boolean
  /** How long ago the oldest unprojected event occurred (null when nothing waits). */
  readonly oldestWaitingAgeMs: number | null
  /** When the checkpoint last moved (epoch ms; null: never). */
  readonly lastProgressAt: number | null
  /**
   * Events wait and nothing was projected for `stallAfterMs` since they started waiting: the
   * projector is dead, stuck or failing on every try. Measured from the database and the log, so
   * any node (and ops) sees it, whichever node runs the projector.
   */
  readonly stalled: boolean
}

export interface LagOptions {
  readonly log: EventLogService
  readonly sql: SqlClient
  readonly partition: number
  readonly stallAfterMs?: number
  /** At most this many waiting entries are read (and decoded) to count them (default 1,000). */
  readonly cap?: number
  readonly now?: () => number
}

/** Projection lag of one partition: what waits, since when, and whether the projector is stalled. */
export const partitionLag = (opts: LagOptions): Effect.Effect<PartitionLag, LogUnavailable | ProjectionFailed> =>
  Effect.gen(function* () {
    const { log, sql, partition } = opts
    const cap = opts.cap ?? 1_000
    const now = (opts.now ?? Date.now)()
    const { rows } = yield* Effect.tryPromise({
      try: () =>
        sql.query<{ position: string; updated_ms: number }>(
          `SELECT position, (extract(epoch FROM updated_at) * 1000)::float8 AS updated_ms
             FROM projection_checkpoints WHERE projection = $1 AND log_partition = $2`,
          [PROJECTIONS[0], partition]
        ),
      catch: (cause) => new ProjectionFailed({ partition, stage: "checkpoint", retryable: isTransientSqlError(cause), cause })
    })
    const row = rows[0]
    const checkpoint = row && row.position !== "" ? row.position : null
    const lastProgressAt = row && row.position !== "" ? Number(row.updated_ms) : null
    const waitingEntries = yield* log.readPartition(partition, checkpoint === null ? { limit: cap } : { after: checkpoint, limit: cap })
    const first = waitingEntries[0]
    const oldestAt = first && Either.isRight(first.event) ? Date.parse(first.event.right.occurredAt) : first ? now : null
    const oldestWaitingAgeMs = oldestAt === null || Number.isNaN(oldestAt) ? null : Math.max(0, now - oldestAt)
    const waitingSince = Math.max(lastProgressAt ?? 0, oldestAt ?? 0)
    return {
      partition,
      checkpoint,
      waiting: waitingEntries.length,
      waitingCapped: waitingEntries.length >= cap,
      oldestWaitingAgeMs,
      lastProgressAt,
      stalled: waitingEntries.length > 0 && now - waitingSince > (opts.stallAfterMs ?? 30_000)
    }
  })

/** Lag of every partition of the log. */
export const projectionLag = (opts: Omit<LagOptions, "partition">): Effect.Effect<ReadonlyArray<PartitionLag>, LogUnavailable | ProjectionFailed> =>
  Effect.forEach(Array.from({ length: opts.log.partitions }, (_, p) => p), (partition) => partitionLag({ ...opts, partition }))
