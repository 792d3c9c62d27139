import { Effect, Either } from "effect"
import type { EventLogService } from "../../src/events/eventLog.js"
import type { DomainEvent } from "../../src/events/schema/catalogue.js"
import type { SqlClient } from "../../src/db/sql.js"
import { PROJECTION_TABLES } from "../../src/projections/mapping/rows.js"

/** Appends facts to a bot's stream as its single writer would (takes the lease once). */
export const appendFacts = async (
  log: EventLogService,
  botId: string,
  facts: ReadonlyArray<DomainEvent>,
  at: (i: number) => string = (i) => new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString(),
  actor = "system"
): Promise<void> => {
  if (facts.length === 0) return
  const lease = (await Effect.runPromise(log.readLease(botId))) ?? (await Effect.runPromise(log.acquireLease(botId, "test-node", 3_600_000)))
  if (!lease) throw new Error(`lease of ${botId} is held elsewhere`)
  const version = await Effect.runPromise(log.streamVersion(botId))
  const r = await Effect.runPromise(
    Effect.either(
      log.append({
        botId,
        expectedVersion: version,
        fence: lease.fence,
        events: facts.map((data, i) => ({ data, occurredAt: at(version + i), correlationId: `c-${botId}-${version + i}`, actor }))
      })
    )
  )
  if (Either.isLeft(r)) throw r.left
}

export const registered = (ownerId: string, name = "bot"): DomainEvent => ({
  _tag: "BotRegistered", ownerId, name, kind: "echo", mode: "sandbox", tokenCiphertext: "v1:secret-ciphertext", config: { greeting: "hi" }
})
export const received = (chatId: number, userId: number, messageId: number, text = "hello"): DomainEvent => ({
  _tag: "MessageReceived", chatId, chatType: "private", userId, messageId, text, at: "2026-01-01T10:00:00.000Z"
})

const KEYS: Record<string, string> = {
  owners: "owner_id", bots: "bot_id", bot_users: "bot_id, user_id", chats: "bot_id, chat_id", messages: "bot_id, version",
  daily_stats: "bot_id, day", daily_active_users: "bot_id, day, user_id", stats_first_seen: "bot_id, user_id",
  audit_log: "bot_id, version", events_archive: "bot_id, version", bot_sessions: "bot_id, session_key",
  imported_records: "bot_id, collection, record_key"
}

/** Every projection table's rows as text, in key order: two databases agree iff their dumps are equal. */
export const dumpTables = async (sql: SqlClient): Promise<Record<string, string[]>> => {
  const out: Record<string, string[]> = {}
  for (const t of Object.values(PROJECTION_TABLES).flat()) {
    const { rows } = await sql.query<{ r: string }>(`SELECT t::text AS r FROM ${t} t ORDER BY ${KEYS[t]}`)
    out[t] = rows.map((x) => x.r)
  }
  return out
}

/** Empties every projection table, the checkpoints and the archive watermarks (DELETE: TRUNCATE of 160 partitions takes seconds). */
export const truncateProjections = (sql: SqlClient): Promise<void> =>
  sql.exec(`${[...Object.values(PROJECTION_TABLES).flat(), "projection_checkpoints", "archive_watermarks"].map((t) => `DELETE FROM ${t};`).join(" ")}`)
