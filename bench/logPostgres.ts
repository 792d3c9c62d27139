import { randomUUID } from "node:crypto"
import { Effect, Either } from "effect"
import { migrate } from "../src/db/migrator.js"
import { makePgSql } from "../src/db/pgSql.js"
import type { SqlClient } from "../src/db/sql.js"
import { encodeNewEvent } from "../src/events/codec.js"
import type { EncodedEvent } from "../src/events/codec.js"
import type { AppendRequest, EventLogService } from "../src/events/eventLog.js"
import { partitionOf } from "../src/events/partition.js"
import { makePostgresEventLog } from "../src/events/postgresEventLog.js"
import type { NewEvent } from "../src/events/schema/envelope.js"
import { rate, report } from "./report.js"
import { newEvent, updateReceived } from "../test/support/events.js"
import { createScratchDatabase } from "../test/support/databases.js"

/*
 * log.postgres.append: events/s through the Postgres adapter's appendMany (advisory stream locks,
 * fence + version check, multi-row insert of events + stream versions, one transaction per batch)
 * for 1,000 bots writing ~300-byte UpdateReceived events. Baseline: a plain multi-row INSERT of the
 * same encoded rows into a table of the same shape (same columns, defaults, indexes, 16 hash
 * partitions), no checks, same batch size and batches in flight, same server, same run.
 * A fresh database is created and dropped.
 */

const BOTS = 1_000
const ROUNDS = 8
const EVENTS_PER_APPEND = 2
const APPENDS_PER_BATCH = 250
const IN_FLIGHT = 4
const adminUrl = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"

/** A typical ~300-byte text update, the same payload the other log benchmark writes. */
const update = (n: number): NewEvent => newEvent(updateReceived(n), { correlationId: `corr-${n}` })

const chunk = <A>(xs: ReadonlyArray<A>, n: number): A[][] => {
  const out: A[][] = []
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n))
  return out
}

/** Runs `work` over `batches`, keeping IN_FLIGHT of them running at once. */
const inFlight = async <A>(batches: ReadonlyArray<A>, work: (batch: A) => Promise<void>) => {
  let next = 0
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < batches.length) await work(batches[next++]!)
    })
  )
}

/** Rounds of one append per bot (a bot's next append waits for its previous one, as an actor's would). */
const appendRounds = async (log: EventLogService, bots: ReadonlyArray<string>, fences: ReadonlyArray<number>, first: number, rounds: number) => {
  for (let round = first; round < first + rounds; round++) {
    const reqs: AppendRequest[] = bots.map((botId, i) => ({
      botId,
      expectedVersion: round * EVENTS_PER_APPEND,
      fence: fences[i]!,
      events: Array.from({ length: EVENTS_PER_APPEND }, (_, k) => update(round * EVENTS_PER_APPEND + k + 1))
    }))
    await inFlight(chunk(reqs, APPENDS_PER_BATCH), async (batch) => {
      const results = await Effect.runPromise(log.appendMany(batch))
      const failed = results.find(Either.isLeft)
      if (failed) throw new Error(`append failed: ${failed.left.message}`)
    })
  }
}

const BASELINE_INSERT = `INSERT INTO events_baseline (partition, bot_id, version, event_id, type, schema_version, occurred_at, correlation_id, causation_id, actor, data)
  SELECT u.partition, u.bot_id, u.version, u.event_id, u.type, u.schema_version, u.occurred_at, u.correlation_id, u.causation_id, u.actor, u.data::jsonb
  FROM unnest($1::smallint[], $2::text[], $3::int[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
    WITH ORDINALITY AS u(partition, bot_id, version, event_id, type, schema_version, occurred_at, correlation_id, causation_id, actor, data, ord)
  ORDER BY u.ord`

/** The same rows, encoded the same way (validation included), inserted with no checks. */
const baselineRounds = async (sql: SqlClient, bots: ReadonlyArray<string>, first: number, rounds: number) => {
  for (let round = first; round < first + rounds; round++) {
    await inFlight(chunk(bots, APPENDS_PER_BATCH), async (batch) => {
      const rows: Array<{ botId: string; version: number; e: EncodedEvent }> = []
      for (const botId of batch) {
        for (let k = 0; k < EVENTS_PER_APPEND; k++) {
          const version = round * EVENTS_PER_APPEND + k + 1
          rows.push({ botId, version, e: Either.getOrThrow(encodeNewEvent(botId, update(version), randomUUID)) })
        }
      }
      await sql.query(BASELINE_INSERT, [
        rows.map((r) => partitionOf(r.botId, 16)), rows.map((r) => r.botId), rows.map((r) => r.version), rows.map((r) => r.e.eventId),
        rows.map((r) => r.e.type), rows.map((r) => r.e.schemaVersion), rows.map((r) => r.e.occurredAt), rows.map((r) => r.e.correlationId),
        rows.map((r) => r.e.causationId || null), rows.map((r) => r.e.actor), rows.map((r) => r.e.data)
      ])
    })
  }
}

export const run = async (): Promise<void> => {
  const db = await createScratchDatabase(adminUrl, "bf_bench_log")
  const sql = makePgSql(db.url, { max: IN_FLIGHT + 2 })
  try {
    await migrate(sql)
    await sql.exec("CREATE TABLE events_baseline (LIKE events INCLUDING ALL) PARTITION BY HASH (bot_id)")
    for (let i = 0; i < 16; i++) {
      await sql.exec(`CREATE TABLE events_baseline_p${i} PARTITION OF events_baseline FOR VALUES WITH (MODULUS 16, REMAINDER ${i})`)
    }
    const log = makePostgresEventLog({ sql })
    const bots = Array.from({ length: BOTS }, (_, i) => `bench-${i}`)
    const fences: number[] = []
    for (const b of bots) fences.push((await Effect.runPromise(log.acquireLease(b, "bench", 600_000)))!.fence)

    // one warm-up round each, then the measured rounds, alternating so neither gets a warmer cache
    await appendRounds(log, bots, fences, 0, 1)
    await baselineRounds(sql, bots, 0, 1)
    const events = BOTS * ROUNDS * EVENTS_PER_APPEND
    const half = ROUNDS / 2
    let adapterSeconds = 0
    let baselineSeconds = 0
    for (const [from, n] of [[1, half], [1 + half, half]] as const) {
      adapterSeconds += (BOTS * n * EVENTS_PER_APPEND) / (await rate(BOTS * n * EVENTS_PER_APPEND, () => appendRounds(log, bots, fences, from, n)))
      baselineSeconds += (BOTS * n * EVENTS_PER_APPEND) / (await rate(BOTS * n * EVENTS_PER_APPEND, () => baselineRounds(sql, bots, from, n)))
    }
    report({
      bench: "log.postgres.append",
      unit: "events/s",
      value: Math.round(events / adapterSeconds),
      baseline: "plain multi-row INSERT of the same rows into a same-shaped table",
      baselineValue: Math.round(events / baselineSeconds),
      bots: BOTS,
      eventsPerAppend: EVENTS_PER_APPEND,
      appendsPerBatch: APPENDS_PER_BATCH,
      inFlight: IN_FLIGHT
    })
  } finally {
    await sql.close()
    await db.drop()
  }
}
