import { Effect, Either, Layer } from "effect"
import { Sql } from "../db/sql.js"
import type { SqlClient } from "../db/sql.js"
import { decodeFields, withPosition } from "./codec.js"
import { LogUnavailable, WrongExpectedVersion } from "./errors.js"
import type { AppendError, InvalidEvent } from "./errors.js"
import { EventLog } from "./eventLog.js"
import type { AppendRequest, AppendResult, Delivery, EventLogService, RawFields } from "./eventLog.js"
import { partitionOf } from "./partition.js"
import { appendBatch, prepareAppend } from "./postgresAppend.js"
import type { AppendOutcome, PreparedAppend } from "./postgresAppend.js"
import { makePostgresGroups } from "./postgresGroups.js"
import { makePostgresLeases } from "./postgresLeases.js"
import { readAfter } from "./postgresPartitionLog.js"
import { formatPosition, parsePosition, ZERO_POSITION } from "./postgresPosition.js"
import { EVENT_COLUMNS, rowFields, rowPosition, toDelivery } from "./postgresRows.js"
import type { EventRow } from "./postgresRows.js"
import type { RecordedEvent } from "./schema/envelope.js"

export interface PostgresEventLogOptions {
  /** The database, migrated (sql/0001..0003). The log does not close it: its owner does. */
  readonly sql: SqlClient
  /** Partition count (default 16). Every node of a fleet must agree on it. */
  readonly partitions?: number
  /**
   * How long a read waits for the visibility horizon to pass entries that are committed but held
   * back by an older writing transaction still open in the cluster (default 2000 ms), so a writer
   * reads its own appends. After that the read returns what is settled; the rest comes later.
   */
  readonly settleWaitMs?: number
}

const POLL_MS = 50
const SETTLE_POLL_MS = 10
const sleep = (ms: number) => Effect.sleep(`${Math.max(0, ms)} millis`)
const UNIQUE_VIOLATION = "23505"
const isUniqueViolation = (e: unknown) => typeof e === "object" && e !== null && (e as { code?: unknown }).code === UNIQUE_VIOLATION

/**
 * The Postgres adapter of the event log: the embedded mode's log (on PGlite) and the cold log (on a
 * server). Layout and visibility rule: docs/postgres-log.md.
 *
 * Guarantees:
 * - an append is validated before any SQL (an invalid one writes nothing), then checked (fence,
 *   expected version) and written in one transaction under the bot's stream lock: all or nothing,
 *   and of two racing writers the loser gets WrongExpectedVersion with the actual version;
 * - appendMany sends all its appends in one transaction of four statements; each append still
 *   succeeds or fails on its own;
 * - partition reads and consumer groups never skip an entry, even when transactions commit out of
 *   order (entries are ordered by (tx, position) and read below the snapshot's xmin);
 * - lease times come from the database clock.
 * Positions are `<tx>-<seq>` strings (postgresPosition.ts).
 */
export const makePostgresEventLog = (options: PostgresEventLogOptions): EventLogService & {
  /** Test hook: writes raw fields into a partition log as a foreign writer could (in no bot stream). */
  readonly injectRaw: (partition: number, fields: RawFields) => Promise<string>
} => {
  const { sql } = options
  const partitions = options.partitions ?? 16
  const settleWaitMs = options.settleWaitMs ?? 2000
  const groups = makePostgresGroups(sql)
  const leases = makePostgresLeases(sql)

  const pOf = (botId: string) => partitionOf(botId, partitions)
  const checkPartition = (p: number) => {
    if (!Number.isInteger(p) || p < 0 || p >= partitions) throw new RangeError(`partition ${p} is not in 0..${partitions - 1}`)
  }
  const call = <A>(operation: string, f: () => Promise<A>): Effect.Effect<A, LogUnavailable> =>
    Effect.tryPromise({ try: f, catch: (cause) => new LogUnavailable({ operation, cause }) })

  /**
   * The stream version: the one `streams` records (kept when old events are trimmed) or the highest
   * stored, whichever is higher, so a writer that bypassed this adapter cannot make appends
   * loop on a version that is already taken. Appends read it the same way.
   */
  const versionOf = (botId: string) =>
    call("streamVersion", async () => {
      const { rows } = await sql.query<{ version: number }>(
        `SELECT greatest((SELECT version FROM streams WHERE bot_id = $1), (SELECT max(version) FROM events WHERE bot_id = $1), 0) AS version`,
        [botId]
      )
      return rows[0]!.version
    })

  /**
   * Runs a batch; a unique violation (a writer that bypassed the stream locks) aborts its
   * transaction, so each append is retried alone and the one that collided reports
   * WrongExpectedVersion with the version it lost to: never a raw database error.
   */
  const runBatch = (batch: ReadonlyArray<PreparedAppend>): Effect.Effect<AppendOutcome[], LogUnavailable> =>
    Effect.tryPromise(() => appendBatch(sql, batch)).pipe(
      Effect.catchAll((e) => {
        const cause = e.error
        if (!isUniqueViolation(cause)) return Effect.fail(new LogUnavailable({ operation: "append", cause }))
        if (batch.length === 1) {
          const { botId, expectedVersion } = batch[0]!.req
          return Effect.map(versionOf(botId), (actual) => [Either.left(new WrongExpectedVersion({ botId, expected: expectedVersion, actual }))])
        }
        return Effect.forEach(batch, (p) => Effect.map(runBatch([p]), (r) => r[0]!))
      })
    )

  /** Waits (briefly) while committed entries are held behind the horizon; see settleWaitMs. */
  const settling = <A extends { readonly held: boolean }>(attempt: () => Promise<A>, operation: string) =>
    Effect.gen(function* () {
      const deadline = Date.now() + settleWaitMs
      for (;;) {
        const r = yield* call(operation, attempt)
        if (!r.held || Date.now() >= deadline) return r
        yield* sleep(SETTLE_POLL_MS)
      }
    })

  const readStreamRows = (botId: string, opts: { from?: number; direction?: "forward" | "backward"; limit?: number }) =>
    call("readStream", async () => {
      const backward = opts.direction === "backward"
      const { rows } = await sql.query<EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM events e
         WHERE e.bot_id = $1 AND e.version IS NOT NULL AND ${backward ? "($2::int IS NULL OR e.version <= $2)" : "e.version >= coalesce($2::int, 1)"}
         ORDER BY e.version ${backward ? "DESC" : "ASC"}
         LIMIT $3`,
        [botId, opts.from ?? null, opts.limit ?? null]
      )
      return rows
    })

  const service: EventLogService = {
    partitions,
    partitionOf: pOf,

    append: (req) =>
      Effect.gen(function* () {
        const prepared = yield* prepareAppend(req, partitions)
        const [outcome] = yield* runBatch([prepared])
        return yield* outcome!
      }),

    appendMany: (reqs) =>
      Effect.gen(function* () {
        const results: Array<Either.Either<AppendResult, AppendError>> = reqs.map(() => Either.left(null as unknown as AppendError))
        const valid: Array<{ readonly index: number; readonly prepared: PreparedAppend }> = []
        reqs.forEach((req: AppendRequest, index) => {
          const p = prepareAppend(req, partitions)
          if (Either.isLeft(p)) results[index] = Either.left(p.left)
          else valid.push({ index, prepared: p.right })
        })
        if (valid.length > 0) {
          const outcomes = yield* runBatch(valid.map((v) => v.prepared))
          outcomes.forEach((o, i) => (results[valid[i]!.index] = o))
        }
        return results
      }),

    readStream: (botId, opts = {}) =>
      Effect.gen(function* () {
        const rows = yield* readStreamRows(botId, opts)
        const out: RecordedEvent[] = []
        for (const row of rows) {
          const env: Either.Either<RecordedEvent, InvalidEvent> = Either.map(decodeFields(rowFields(row)), (e) =>
            withPosition(e, rowPosition(row), row.partition, row.recorded_at ?? undefined)
          )
          out.push(yield* env)
        }
        return out
      }),

    streamVersion: versionOf,

    readPartition: (partition, opts = {}) =>
      Effect.gen(function* () {
        checkPartition(partition)
        const after = opts.after === undefined ? ZERO_POSITION : parsePosition(opts.after)
        const limit = opts.limit ?? null
        const r = yield* settling(() => readAfter(sql, partition, after, limit), "readPartition")
        return r.rows.map((row) => toDelivery(row, 1))
      }),

    ensureGroup: (partition, group, from = "start") =>
      Effect.suspend(() => {
        checkPartition(partition)
        return settling(() => groups.ensure(partition, group, from), "ensureGroup")
      }).pipe(
        // still held after the wait: create it after the last settled entry anyway
        Effect.flatMap((r) => (r.held ? call("ensureGroup", () => groups.ensure(partition, group, from, true)) : Effect.void)),
        Effect.asVoid
      ),

    readGroup: ({ partition, group, consumer, count, blockMs }) =>
      Effect.gen(function* () {
        checkPartition(partition)
        const start = Date.now()
        const deadline = start + Math.max(0, blockMs ?? 0)
        const settleDeadline = start + settleWaitMs
        // every attempt records what it delivers as pending: keep them all, never drop one
        const out: Delivery[] = []
        for (;;) {
          const r = yield* call("readGroup", () => groups.readOnce(partition, group, consumer, count - out.length))
          out.push(...r.deliveries)
          const now = Date.now()
          if (out.length >= count) return out
          if (r.held && now < settleDeadline) {
            yield* sleep(SETTLE_POLL_MS)
            continue
          }
          if (out.length > 0 || now >= deadline) return out
          yield* sleep(Math.min(POLL_MS, deadline - now))
        }
      }),

    ack: (partition, group, positions) => call("ack", () => groups.ack(partition, group, positions)),
    reclaim: ({ partition, group, consumer, minIdleMs, count }) =>
      call("reclaim", () => groups.reclaim(partition, group, consumer, minIdleMs, count)),
    pendingCount: (partition, group) => call("pendingCount", () => groups.pendingCount(partition, group)),
    groupProgress: (partition) =>
      Effect.suspend(() => {
        checkPartition(partition)
        return call("groupProgress", () => groups.progress(partition))
      }),
    deadLetter: ({ group, delivery, reason }) => call("deadLetter", () => groups.deadLetter(group, delivery, reason)),
    readDeadLetters: (partition) => call("readDeadLetters", () => groups.readDeadLetters(partition)),

    // a bot's event is ONE row, in its stream and in its partition log: it goes with trimStream
    // (which keeps the bot's hot window), so only entries in no stream (foreign ones) go here
    trimPartition: (partition, below) =>
      call("trimPartition", async () => {
        const b = parsePosition(below)
        const { rowCount } = await sql.query("DELETE FROM events WHERE partition = $1 AND version IS NULL AND (tx, position) < ($2::text::xid8, $3::bigint)", [
          partition,
          b.tx,
          b.seq
        ])
        return rowCount
      }),
    trimStream: (botId, belowVersion) =>
      call("trimStream", async () => {
        const { rowCount } = await sql.query("DELETE FROM events WHERE bot_id = $1 AND version < $2", [botId, belowVersion])
        return rowCount
      }),

    acquireLease: (botId, nodeId, ttlMs) => call("acquireLease", () => leases.acquire(botId, nodeId, ttlMs)),
    renewLease: (lease, ttlMs) => call("renewLease", () => leases.renew(lease, ttlMs)),
    releaseLease: (lease) => call("releaseLease", () => leases.release(lease)),
    readLease: (botId) => call("readLease", () => leases.read(botId)),

    close: Effect.void
  }

  return {
    ...service,
    injectRaw: async (partition, fields) => {
      checkPartition(partition)
      const { rows } = await sql.query<{ tx: string; position: string }>(
        `INSERT INTO events (partition, bot_id, event_id, type, occurred_at, correlation_id, actor, raw)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb) RETURNING tx, position`,
        [partition, fields["botId"] ?? "", fields["eventId"] ?? "", fields["type"] ?? "", fields["occurredAt"] ?? "",
          fields["correlationId"] ?? "", fields["actor"] ?? "", JSON.stringify(fields)]
      )
      return formatPosition({ tx: rows[0]!.tx, seq: rows[0]!.position })
    }
  }
}

/** The EventLog service over the Sql service (a migrated database). */
export const PostgresEventLogLive = (options: Omit<PostgresEventLogOptions, "sql"> = {}): Layer.Layer<EventLog, never, Sql> =>
  Layer.effect(EventLog, Effect.map(Sql, (sql) => makePostgresEventLog({ ...options, sql })))
