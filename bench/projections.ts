import { Effect, Either, Fiber } from "effect"
import { migrate } from "../src/db/migrator.js"
import { makePgSql } from "../src/db/pgSql.js"
import type { SqlClient } from "../src/db/sql.js"
import type { EventLogService } from "../src/events/eventLog.js"
import { makeMemoryEventLog } from "../src/events/memoryEventLog.js"
import type { DomainEvent } from "../src/events/schema/catalogue.js"
import { partitionLag } from "../src/projections/lag.js"
import { PROJECTION_TABLES } from "../src/projections/mapping/rows.js"
import { makeProjector } from "../src/projections/projector.js"
import { runProjectors } from "../src/projections/runner.js"
import { percentile, report } from "./report.js"
import { createScratchDatabase } from "../test/support/databases.js"

/*
 * projections.throughput: events/s projected from the log into every table (bots, users, chats,
 * messages, daily stats + helpers, audit, archive) with the checkpoint, in one transaction per
 * batch of 2,000, four partitions at a time. Traffic is what the echo bot records per update
 * (UpdateReceived, MessageReceived, ReplySent, now and then UserSeen) over 200 bots.
 * Baseline: the very rows that projection produced, inserted again into the same (emptied)
 * tables as plain multi-row inserts (json_populate_recordset, 2,000 rows per statement): the
 * cost of the writes alone, without reading the log, mapping, upserts or checkpoints.
 * projections.lag: p99 of the age of the oldest unprojected event, sampled every 50 ms while
 * events are appended at a steady 5,000 events/s for 4 s with the projectors running.
 */

const BOTS = 200
const UPDATES_PER_BOT = 140
const PARTITIONS = 16
const BATCH = 2000
const IN_FLIGHT = 4
const adminUrl = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"

const iso = (ms: number) => new Date(ms).toISOString()

const updateFacts = (bot: number, n: number, at: string): DomainEvent[] => {
  const user = 1000 + ((bot * 7 + n) % 50)
  const facts: DomainEvent[] = [
    { _tag: "UpdateReceived", inboxId: `${n}-0`, updateId: n, update: { update_id: n, message: { message_id: n, text: "hello there, bot" } }, receivedAt: at },
    { _tag: "MessageReceived", chatId: user, chatType: "private", userId: user, messageId: n, text: "hello there, bot", at },
    { _tag: "ReplySent", chatId: user, messageId: n + 1_000_000, text: "hello there, bot", inReplyTo: n, at }
  ]
  if (n % 10 === 0) facts.push({ _tag: "UserSeen", userId: user, firstName: "Ada", username: "ada", languageCode: "en", at })
  return facts
}

const appendAll = async (log: EventLogService, facts: Map<string, DomainEvent[]>, at: () => string) => {
  const reqs = []
  for (const [botId, list] of facts) {
    const lease = (await Effect.runPromise(log.readLease(botId))) ?? (await Effect.runPromise(log.acquireLease(botId, "bench", 3_600_000)))
    const version = await Effect.runPromise(log.streamVersion(botId))
    reqs.push({ botId, expectedVersion: version, fence: lease!.fence, events: list.map((data) => ({ data, occurredAt: at(), correlationId: "c", actor: "system" })) })
  }
  const results = await Effect.runPromise(log.appendMany(reqs))
  for (const r of results) if (Either.isLeft(r)) throw r.left
}

const freshDatabase = () => createScratchDatabase(adminUrl, "bf_bench_projections")

const tables = Object.values(PROJECTION_TABLES).flat()
const clear = (sql: SqlClient) => sql.exec([...tables, "projection_checkpoints"].map((t) => `DELETE FROM ${t};`).join(" "))

const throughput = async (sql: SqlClient) => {
  const log = makeMemoryEventLog({ partitions: PARTITIONS })
  const t0 = Date.UTC(2026, 10, 26)
  const facts = new Map<string, DomainEvent[]>()
  for (let b = 0; b < BOTS; b++) {
    const list: DomainEvent[] = [{ _tag: "BotRegistered", ownerId: `owner-${b % 20}`, name: `bot ${b}`, kind: "echo", mode: "sandbox" }]
    for (let n = 1; n <= UPDATES_PER_BOT; n++) list.push(...updateFacts(b, n, iso(t0 + n * 1000)))
    facts.set(`bot-${b}`, list)
  }
  await appendAll(log, facts, () => iso(t0))
  const events = [...facts.values()].reduce((n, l) => n + l.length, 0)

  const started = process.hrtime.bigint()
  let next = 0
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < PARTITIONS) {
        const projector = makeProjector({ log, sql, partition: next++, batchSize: BATCH, blockMs: 0 })
        for (;;) {
          const r = await Effect.runPromise(projector.step)
          if (r.caughtUp && r.projected === 0) break
        }
      }
    })
  )
  const projectedPerSec = events / (Number(process.hrtime.bigint() - started) / 1e9)

  // the same rows, as JSON, re-inserted into the emptied tables
  const snapshot: Array<[string, string[]]> = []
  let rowCount = 0
  for (const t of tables) {
    const { rows } = await sql.query<{ j: string }>(`SELECT row_to_json(t)::text AS j FROM ${t} t`)
    snapshot.push([t, rows.map((r) => r.j)])
    rowCount += rows.length
  }
  await clear(sql)
  const baseStarted = process.hrtime.bigint()
  const jobs: Array<[string, string[]]> = snapshot.flatMap(([t, rows]) =>
    Array.from({ length: Math.ceil(rows.length / BATCH) }, (_, i): [string, string[]] => [t, rows.slice(i * BATCH, (i + 1) * BATCH)]))
  let j = 0
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (j < jobs.length) {
        const [t, rows] = jobs[j++]!
        await sql.query(`INSERT INTO ${t} SELECT * FROM json_populate_recordset(null::${t}, $1::json)`, [`[${rows.join(",")}]`])
      }
    })
  )
  const baselinePerSec = events / (Number(process.hrtime.bigint() - baseStarted) / 1e9)
  report({
    bench: "projections.throughput",
    unit: "events/s",
    value: Math.round(projectedPerSec),
    baseline: "multi-row insert of the same rows (no log read, mapping, upserts or checkpoints)",
    baselineValue: Math.round(baselinePerSec),
    events,
    rows: rowCount,
    target: ">= 50000 events/s, ratio >= 0.3"
  })
}

const lag = async (sql: SqlClient) => {
  await clear(sql)
  const log = makeMemoryEventLog({ partitions: PARTITIONS })
  const RATE = 5000
  const SECONDS = 4
  const TICK_MS = 100
  const fiber = Effect.runFork(runProjectors({ log, sql, batchSize: BATCH, blockMs: 0, idleSleep: "10 millis" }))
  const bots = Array.from({ length: 100 }, (_, b) => `lag-bot-${b}`)
  await appendAll(log, new Map(bots.map((b) => [b, [{ _tag: "BotRegistered", ownerId: "o", name: b, kind: "echo", mode: "sandbox" } as DomainEvent]])), () => iso(Date.now()))
  const samples: number[] = []
  let sent = 0
  const startedAt = Date.now()
  let n = 0
  // a fiber, not a timer of floating promises: it is interrupted (and awaited) before the pool
  // closes, so no sample can run on a closed pool; a failed sample is skipped, not fatal
  const sampler = Effect.runFork(
    Effect.forEach(Array.from({ length: PARTITIONS }, (_, p) => p), (partition) => partitionLag({ log, sql, partition, cap: 1 }), { concurrency: "unbounded" }).pipe(
      Effect.tap((lags) => Effect.sync(() => samples.push(Math.max(...lags.map((l) => l.oldestWaitingAgeMs ?? 0))))),
      Effect.ignore,
      Effect.zipRight(Effect.sleep("50 millis")),
      Effect.forever
    )
  )
  while (Date.now() - startedAt < SECONDS * 1000) {
    const due = Math.floor(((Date.now() - startedAt) / 1000) * RATE)
    const facts = new Map<string, DomainEvent[]>()
    while (sent < due) {
      const bot = bots[n % bots.length]!
      const list = facts.get(bot) ?? []
      facts.set(bot, list)
      const more = updateFacts(n % bots.length, ++n, iso(Date.now()))
      list.push(...more)
      sent += more.length
    }
    if (facts.size > 0) await appendAll(log, facts, () => iso(Date.now()))
    await new Promise((r) => setTimeout(r, TICK_MS))
  }
  // let the projectors finish what is waiting, then stop them
  for (let i = 0; i < 100; i++) {
    const lags = await Effect.runPromise(Effect.forEach(Array.from({ length: PARTITIONS }, (_, p) => p), (partition) => partitionLag({ log, sql, partition })))
    if (lags.every((l) => l.waiting === 0)) break
    await new Promise((r) => setTimeout(r, 100))
  }
  await Effect.runPromise(Fiber.interrupt(sampler))
  await Effect.runPromise(Fiber.interrupt(fiber))
  const sorted = [...samples].sort((a, b) => a - b)
  report({
    bench: "projections.lag",
    unit: "ms",
    value: percentile(sorted, 99),
    p50: percentile(sorted, 50),
    rateEventsPerSec: Math.round(sent / SECONDS),
    samples: sorted.length,
    target: "p99 <= 1000 ms at 5000 events/s"
  })
}

export const run = async (): Promise<void> => {
  const db = await freshDatabase()
  const sql = makePgSql(db.url, { max: IN_FLIGHT + 2 })
  try {
    await migrate(sql)
    await throughput(sql)
    await lag(sql)
  } finally {
    await sql.close()
    await db.drop()
  }
}
