import { Clock, Effect, Either } from "effect"
import type { LogUnavailable } from "../events/errors.js"
import type { Delivery, EventLogService } from "../events/eventLog.js"
import { inRole } from "../db/roles.js"
import type { SqlClient, SqlTx } from "../db/sql.js"
import type { RecordedEvent } from "../events/schema/envelope.js"
import { chainAuditRows } from "./auditChain.js"
import { ArchiveConflict, readBotStates, recordDivergences, screenAgainstArchive } from "./divergence.js"
import type { Divergence } from "./divergence.js"
import { ProjectionFailed, isTransientSqlError } from "./errors.js"
import { mapBatch } from "./mapping/mapBatch.js"
import { comparePositions } from "./mapping/positions.js"
import { LIVE_TABLES, PROJECTIONS } from "./mapping/rows.js"
import type { MappedBatch } from "./mapping/mapBatch.js"
import type { MappingFailure, ProjectionInput } from "./mapping/rows.js"
import { projectionStatements } from "./mapping/statements.js"

export interface ProjectorOptions {
  readonly log: EventLogService
  readonly sql: SqlClient
  readonly partition: number
  /** Consumer group on the partition log (default `projections`). */
  readonly group?: string
  readonly consumer?: string
  /** Entries per transaction (default 1000). */
  readonly batchSize?: number
  /** How long a caught-up projector waits for new entries in the group (default 1000 ms). */
  readonly blockMs?: number
  /** Entries another consumer left pending this long are taken over and acked once covered (default 30 s). */
  readonly reclaimIdleMs?: number
  /** Told after each commit (metrics): the events whose rows it wrote, and the kinds of their bots known before the batch. */
  readonly onCommitted?: (batch: CommittedBatch) => void
  /** Fault injection for tests: runs inside the transaction after the rows are written, before commit. */
  readonly beforeCommit?: (positions: ReadonlyArray<string>) => void | Promise<void>
}

export interface CommittedBatch {
  readonly partition: number
  readonly events: ReadonlyArray<RecordedEvent>
  /** Bot id → kind, from the `bots` projection before the batch (a bot registered in the batch is not in it). */
  readonly kinds: ReadonlyMap<string, string>
}

export interface StepResult {
  /** Entries whose rows were written (refused ones excluded). */
  readonly projected: number
  /** Entries dead-lettered in this step (diverged and held ones included). */
  readonly deadLettered: number
  /** The checkpoint after the step (null: nothing projected yet). */
  readonly checkpoint: string | null
  /** True when the log had no more entries after the checkpoint. */
  readonly caughtUp: boolean
}

export interface Projector {
  readonly partition: number
  /** One batch: read, map, write rows + checkpoint in one transaction, dead-letter refusals, ack. */
  readonly step: Effect.Effect<StepResult, ProjectionFailed | LogUnavailable>
}

/** Projection work runs as the projector role, whatever the login (db/roles.ts). */
const PROJECTOR = { role: "projector" } as const

/** '' in the table means "nothing projected yet" (the column is NOT NULL so rows can be locked). */
const START = ""

/** Reads the partition's checkpoint; creates the rows on first use. All projections move together. */
export const readCheckpoint = async (sql: SqlClient | SqlTx, partition: number): Promise<string | null> => {
  await sql.query(
    `INSERT INTO projection_checkpoints (projection, log_partition, position)
     SELECT p, $2, $3 FROM unnest($1::text[]) AS p ON CONFLICT DO NOTHING`,
    [PROJECTIONS, partition, START]
  )
  const { rows } = await sql.query<{ position: string }>(
    "SELECT DISTINCT position FROM projection_checkpoints WHERE log_partition = $1 AND projection = ANY($2::text[])",
    [partition, PROJECTIONS]
  )
  if (rows.length !== 1) throw new Error(`checkpoints of partition ${partition} disagree: ${rows.map((r) => r.position).join(", ")}`)
  return rows[0]!.position === START ? null : rows[0]!.position
}

/**
 * The projector of one partition. Correctness does not depend on how the consumer group delivers:
 * the rows come from the partition log read in order from the checkpoint (so a redelivered entry,
 * or one delivered after later ones, never changes a row), and the checkpoint moves in the same
 * transaction as the rows, under a row lock that also makes a second projector of the same
 * partition back off instead of writing twice. The group provides the wake-up (blocking read),
 * the pending list (what was delivered and is not yet projected) and the dead-letter route; an
 * entry is acked only once a committed checkpoint covers it.
 */
export const makeProjector = (opts: ProjectorOptions): Projector => {
  const { log, sql, partition } = opts
  const group = opts.group ?? "projections"
  const consumer = opts.consumer ?? `projector-${partition}`
  const batchSize = opts.batchSize ?? 1000
  const reclaimIdleMs = opts.reclaimIdleMs ?? 30_000
  let nextReclaimAt = 0
  let started = false
  let caughtUp = false
  // the checkpoint as of our last commit; undefined = read it from the table. The transaction
  // re-checks it under a row lock, so a stale value costs a retry, never a double write.
  let known: string | null | undefined
  // after a data error, batches of one find the poisoned entry
  let isolate = false
  // after an unforeseen archive conflict, the next batch looks every event up in the archive
  let checkAll = false
  const unacked = new Set<string>()
  // dead-lettered by this process and not yet behind the checkpoint: a retried batch must not repeat them
  const deadLettered = new Set<string>()

  const fail = (stage: ProjectionFailed["stage"]) => (cause: unknown) =>
    new ProjectionFailed({ partition, stage, retryable: isTransientSqlError(cause), cause })

  const ackCovered = (checkpoint: string | null) =>
    Effect.gen(function* () {
      if (checkpoint === null) return
      for (const p of deadLettered) if (comparePositions(p, checkpoint) <= 0) deadLettered.delete(p)
      const covered = [...unacked].filter((p) => comparePositions(p, checkpoint) <= 0)
      if (covered.length === 0) return
      yield* log.ack(partition, group, covered)
      for (const p of covered) unacked.delete(p)
    })

  const write = (expected: string | null, mapped: MappedBatch, last: Delivery, divergences: ReadonlyArray<Divergence> = []) =>
    Effect.tryPromise({
      try: () =>
        inRole(sql, PROJECTOR, async (tx) => {
          // Safe here: a commit lost in a server crash loses its checkpoint with its rows, and the
          // batch is projected again from the log (acks are not what makes it correct).
          // (set in the same statement as the lock: one round trip less per transaction)
          const relaxed = tx.dialect === "postgres" ? ", set_config('synchronous_commit', 'off', true)" : ""
          const { rows } = await tx.query<{ position: string }>(
            `SELECT position${relaxed} FROM projection_checkpoints WHERE log_partition = $1 AND projection = ANY($2::text[]) FOR UPDATE`,
            [partition, PROJECTIONS]
          )
          const now = rows.length === PROJECTIONS.length && rows.every((r) => r.position === (expected ?? START))
          // someone else moved the checkpoint since we read it: write nothing, read again
          if (!now) return { moved: true }
          const chained = { ...mapped.rows, audit: [...(await chainAuditRows(tx, mapped.rows, LIVE_TABLES.audit_log))] }
          for (const p of PROJECTIONS) {
            for (const s of projectionStatements(p, chained, LIVE_TABLES)) {
              const r = await tx.query(s.text, s.params)
              // the archive insert skips rows already there: one the screen did not foresee is not dropped
              if (p === "archive" && s.text.startsWith(`INSERT INTO ${LIVE_TABLES.events_archive} `) && r.rowCount !== chained.archive.length) {
                throw new ArchiveConflict(chained.archive.length, r.rowCount)
              }
            }
          }
          await recordDivergences(tx, divergences)
          if (opts.beforeCommit) await opts.beforeCommit(mapped.positions)
          const lastAt = Either.isRight(last.event) ? last.event.right.occurredAt : null
          await tx.query(
            `UPDATE projection_checkpoints SET position = $3, events = events + $4, last_event_at = COALESCE($5::timestamptz, last_event_at),
             updated_at = now() WHERE log_partition = $1 AND projection = ANY($2::text[])`,
            [partition, PROJECTIONS, last.position, mapped.positions.length - mapped.failures.length, lastAt]
          )
          return { moved: false }
        }),
      catch: fail("write")
    })

  const step: Projector["step"] = Effect.gen(function* () {
    if (!started) {
      yield* log.ensureGroup(partition, group, "start")
      // entries this consumer had pending before a restart: remember them so they get acked. A
      // reclaim starts at the beginning of the pending list each time (XAUTOCLAIM from 0-0), so
      // with 1,000 or more pending it hands out the same entries again: stop once nothing new
      // comes (the rest are reclaimed by later steps, once these are acked or idle)
      for (;;) {
        const r = yield* log.reclaim({ partition, group, consumer, minIdleMs: 0, count: 1000 })
        const known = unacked.size
        for (const d of r.deliveries) unacked.add(d.position)
        if (r.deliveries.length + r.trimmedAcked.length < 1000 || unacked.size === known) break
      }
      started = true
    } else if ((yield* Clock.currentTimeMillis) >= nextReclaimAt) {
      // a dead consumer's pending entries: projected from the log anyway, only their acks are owed.
      // Looked for a few times per idle period, not at every step: an entry is reclaimable only
      // once idle that long, so looking more often finds nothing and costs a round trip per batch
      nextReclaimAt = (yield* Clock.currentTimeMillis) + reclaimIdleMs / 4
      const r = yield* log.reclaim({ partition, group, consumer, minIdleMs: reclaimIdleMs, count: batchSize })
      for (const d of r.deliveries) unacked.add(d.position)
    }
    const delivered = yield* log.readGroup({ partition, group, consumer, count: batchSize, ...(caughtUp && opts.blockMs !== 0 ? { blockMs: opts.blockMs ?? 1000 } : {}) })
    for (const d of delivered) unacked.add(d.position)

    const checkpoint = known !== undefined ? known : yield* Effect.tryPromise({ try: () => inRole(sql, PROJECTOR, (tx) => readCheckpoint(tx, partition)), catch: fail("checkpoint") })
    known = checkpoint
    const limit = isolate ? 1 : batchSize
    const from = (n: number) => (checkpoint === null ? { limit: n } : { after: checkpoint, limit: n })
    // Steady state: the group hands out the log's next entries in order, so when its first
    // delivery is the entry right after the checkpoint, the deliveries are the batch (no second
    // read and decode of the same entries). Otherwise (restart, redelivery, stolen entries) the
    // batch is read from the log itself.
    const head = yield* log.readPartition(partition, from(1))
    const contiguous =
      head.length === 1 && delivered.length > 0 && delivered[0]!.position === head[0]!.position &&
      delivered.every((d, i) => i === 0 || comparePositions(delivered[i - 1]!.position, d.position) < 0)
    const entries = head.length === 0 ? [] : contiguous ? delivered.slice(0, limit) : yield* log.readPartition(partition, from(limit))
    caughtUp = entries.length < limit
    if (entries.length === 0) {
      yield* ackCovered(checkpoint)
      return { projected: 0, deadLettered: 0, checkpoint, caughtUp: true }
    }

    const inputs: ProjectionInput[] = []
    const refused: MappingFailure[] = []
    for (const d of entries) {
      if (Either.isLeft(d.event)) refused.push({ position: d.position, reason: d.event.left.message })
      else inputs.push({ event: d.event.right, raw: d.raw })
    }
    // owners of bots registered before this batch (the batch's own registrations are mapped in
    // order), and what the archive already holds of each bot (divergence.ts)
    const botIds = [...new Set(inputs.map((i) => i.event.botId))]
    const screened = yield* Effect.tryPromise({
      try: () =>
        inRole(sql, PROJECTOR, async (tx) => {
          const states = await readBotStates(tx, botIds)
          return { states, ...(await screenAgainstArchive(tx, inputs, states, checkAll)) }
        }),
      catch: fail("owners")
    })
    const ownerMap = new Map<string, string>()
    for (const [botId, s] of screened.states) if (s.owner !== null) ownerMap.set(botId, s.owner)
    for (const d of screened.divergences) {
      yield* Effect.logError(`the hot log diverges from the archive: bot ${d.bot_id} version ${d.version} is event ${d.archived_event_id} (${d.archived_type}) in the archive and ${d.log_event_id} (${d.log_type}) in the hot log; the bot's events are held (docs/redis.md)`).pipe(
        Effect.annotateLogs({ botId: d.bot_id, version: d.version, partition, position: d.log_position })
      )
    }
    const mapped = mapBatch(screened.inputs, ownerMap)
    refused.push(...screened.refused, ...mapped.failures)
    // refusals are known before the transaction (mapping is pure): dead-letter them first, so a
    // crash after the commit cannot lose them (a crash before the commit may dead-letter one twice)
    for (const f of refused) {
      if (deadLettered.has(f.position)) continue
      const d = entries.find((e) => e.position === f.position)!
      yield* log.deadLetter({ group, delivery: d, reason: f.reason })
      deadLettered.add(f.position)
    }

    const last = entries[entries.length - 1]!
    const written = yield* Effect.either(write(checkpoint, mapped, last, screened.divergences))
    if (Either.isLeft(written)) {
      known = undefined
      const err = written.left
      if (err.cause instanceof ArchiveConflict) {
        yield* Effect.logWarning(err.cause.message).pipe(Effect.annotateLogs({ partition }))
        checkAll = true
        return { projected: 0, deadLettered: refused.length, checkpoint, caughtUp: false }
      }
      if (err.retryable) return yield* Effect.fail(err)
      if (entries.length > 1) {
        // a data error somewhere in the batch: find it with batches of one
        isolate = true
        return { projected: 0, deadLettered: refused.length, checkpoint, caughtUp: false }
      }
      // this one entry fails on its own: dead-letter it with the SQL error and move past it
      yield* log.deadLetter({ group, delivery: last, reason: `projection failed: ${String((err.cause as Error)?.message ?? err.cause)}` })
      const skipped = yield* Effect.either(write(checkpoint, mapBatch([], ownerMap), last))
      if (Either.isLeft(skipped)) return yield* Effect.fail(skipped.left)
      if (skipped.right.moved) {
        known = undefined
        return { projected: 0, deadLettered: 1, checkpoint, caughtUp: false }
      }
      isolate = false
      known = last.position
      yield* ackCovered(last.position)
      return { projected: 0, deadLettered: 1, checkpoint: last.position, caughtUp }
    }
    if (written.right.moved) {
      known = undefined
      return { projected: 0, deadLettered: refused.length, checkpoint, caughtUp: false }
    }
    known = last.position
    isolate = false
    if (opts.onCommitted) {
      const failed = new Set(mapped.failures.map((f) => f.position))
      const kinds = new Map<string, string>()
      for (const [botId, s] of screened.states) if (s.kind !== null) kinds.set(botId, s.kind)
      opts.onCommitted({ partition, events: screened.inputs.map((i) => i.event).filter((e) => !failed.has(e.position)), kinds })
    }
    checkAll = false
    yield* ackCovered(last.position)
    return { projected: screened.inputs.length - mapped.failures.length, deadLettered: refused.length, checkpoint: last.position, caughtUp }
  })

  return { partition, step }
}
