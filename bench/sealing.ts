import { loadavg } from "node:os"
import { Effect } from "effect"
import { migrate } from "../src/db/migrator.js"
import { makePgSql } from "../src/db/pgSql.js"
import type { EventLogService } from "../src/events/eventLog.js"
import { makeMemoryEventLog } from "../src/events/memoryEventLog.js"
import type { DomainEvent } from "../src/events/schema/catalogue.js"
import type { NewEvent } from "../src/events/schema/envelope.js"
import { openUserKeys, withSealing } from "../src/privacy/sealingLog.js"
import { createScratchDatabase } from "../test/support/databases.js"
import { rate, report } from "./report.js"

/*
 * `npm run bench -- sealing`: what sealing personal fields at the log's boundary costs
 * (docs/privacy.md). The same 20,000 conversation events (200 users: UserSeen, UpdateReceived,
 * MessageReceived, ReplySent), appended in batches of 20 and read back, through the in-memory log
 * (the baseline: only the codec's work) and through the same log with sealing, keys in Postgres
 * and the per-process key cache warm after each user's first event. Memory log on purpose: the
 * ratio is the CPU sealing adds, not a store's round trips (which a real log adds to both sides).
 */

const USERS = 200
const EVENTS = 20_000
const BATCH = 20
const adminUrl = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"

const conversationEvents = (): Array<NewEvent> => {
  const out: Array<NewEvent> = []
  const at = "2026-12-01T00:00:00.000Z"
  for (let n = 0; out.length < EVENTS; n++) {
    const userId = 1000 + (n % USERS)
    const text = `message ${n} from a user — привет 👋`
    const update = { update_id: n, message: { message_id: n, from: { id: userId, is_bot: false, first_name: "Ada", username: "ada" }, chat: { id: userId, type: "private", first_name: "Ada" }, date: 1, text } }
    const data: ReadonlyArray<DomainEvent> = [
      { _tag: "UpdateReceived", inboxId: `${n}-0`, updateId: n, update, receivedAt: at },
      { _tag: "UserSeen", userId, firstName: "Ada", username: "ada", at },
      { _tag: "MessageReceived", chatId: userId, chatType: "private", userId, messageId: n, text, at },
      { _tag: "ReplySent", chatId: userId, messageId: n + 1, text: `you said ${text}`, at }
    ]
    for (const d of data) out.push({ data: d, occurredAt: at, correlationId: `c${n}`, actor: `user:${userId}` })
  }
  return out.slice(0, EVENTS)
}

const appendAll = (log: EventLogService, botId: string, events: ReadonlyArray<NewEvent>) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const lease = (yield* log.acquireLease(botId, "bench", 600_000))!
      for (let i = 0; i < events.length; i += BATCH) {
        yield* log.append({ botId, expectedVersion: i, fence: lease.fence, events: events.slice(i, i + BATCH) })
      }
    })
  )

const readAll = async (log: EventLogService, botId: string) => {
  let n = 0
  for (let from = 1; from <= EVENTS; from += 1000) n += (await Effect.runPromise(log.readStream(botId, { from, limit: 1000 }))).length
  if (n !== EVENTS) throw new Error(`read ${n} events, expected ${EVENTS}`)
}

export const run = async (): Promise<void> => {
  const db = await createScratchDatabase(adminUrl, "bf_bench_sealing")
  const sql = makePgSql(db.url)
  try {
    await migrate(sql)
    const { cache } = openUserKeys(sql, Buffer.alloc(32, 1), { listen: false })
    const events = conversationEvents()
    const loadBefore = loadavg()[0]
    const plain = makeMemoryEventLog({ partitions: 4 })
    const sealed = withSealing(makeMemoryEventLog({ partitions: 4 }), cache)
    // warm-up of both paths (JIT), then measured; the key cache is warm for the measured run
    await appendAll(plain, "warm", events.slice(0, 2000))
    await appendAll(sealed, "warm", events.slice(0, 2000))
    const plainAppend = await rate(EVENTS, () => appendAll(plain, "b", events))
    const sealedAppend = await rate(EVENTS, () => appendAll(sealed, "b", events))
    const plainRead = await rate(EVENTS, () => readAll(plain, "b"))
    const sealedRead = await rate(EVENTS, () => readAll(sealed, "b"))
    const load = { loadBefore, loadAfter: loadavg()[0] }
    report({ bench: "sealing.append", unit: "events/s", value: sealedAppend, baseline: "memory log without sealing", baselineValue: plainAppend, ...load })
    report({ bench: "sealing.read", unit: "events/s", value: sealedRead, baseline: "memory log without sealing", baselineValue: plainRead, ...load })
    cache.close()
  } finally {
    await sql.close()
    await db.drop()
  }
}
