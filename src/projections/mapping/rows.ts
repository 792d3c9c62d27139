import type { RawFields } from "../../events/eventLog.js"
import type { RecordedEvent } from "../../events/schema/envelope.js"

/** The projections, each a set of tables rebuilt together. */
export const PROJECTIONS = ["bots", "users", "messages", "daily_stats", "audit", "archive"] as const
export type ProjectionName = (typeof PROJECTIONS)[number]

/** The tables each projection writes (and a rebuild replaces). */
export const PROJECTION_TABLES = {
  bots: ["owners", "bots"],
  users: ["bot_users", "chats", "bot_sessions", "imported_records"],
  messages: ["messages"],
  daily_stats: ["daily_stats", "daily_active_users", "stats_first_seen"],
  audit: ["audit_log"],
  archive: ["events_archive"]
} as const satisfies Record<ProjectionName, ReadonlyArray<string>>

export type TableName = (typeof PROJECTION_TABLES)[ProjectionName][number]
/** Where each logical table is written: the live name, or a rebuild's shadow name. */
export type TableNames = Readonly<Record<TableName, string>>

export const LIVE_TABLES: TableNames = Object.fromEntries(
  Object.values(PROJECTION_TABLES).flat().map((t) => [t, t])
) as unknown as TableNames

/** One log entry to project: the decoded (upcast) event and its fields as stored, for the archive. */
export interface ProjectionInput {
  readonly event: RecordedEvent
  readonly raw: RawFields
}

/** An event the mapping refuses (it goes to the dead-letter stream with the reason). */
export interface MappingFailure {
  readonly position: string
  readonly reason: string
}

export interface OwnerRow { owner_id: string; first_bot_at: string; bots: number }
export interface BotRow {
  bot_id: string; owner_id: string; name: string; kind: string; mode: string; config: string
  has_token: boolean; registered_at: string; version: number; log_partition: number
}
/** The net change a batch makes to one bot; null fields leave the stored value alone. */
export interface BotUpdateRow {
  bot_id: string; version: number; last_event_at: string; state: string | null; node_id: string | null
  last_error: string | null; removed_at: string | null; has_token: boolean | null; token_rotated_at: string | null
  last_activity_at: string | null; inbox_lag_ms: number | null
}
/** Merge patches must apply in order, so each one is its own statement (they are rare). */
export interface ConfigPatchRow { bot_id: string; patch: string }
/**
 * first_name non-null means the batch saw a profile (UserSeen), which then replaces the stored one.
 * blocked_reset: the batch saw the user unblock the bot, so its blocked_at (null, or a block
 * after that) replaces the stored one; otherwise the first block is kept.
 */
export interface UserRow {
  bot_id: string; user_id: number; owner_id: string; first_name: string | null; last_name: string | null
  username: string | null; language_code: string | null; first_seen_at: string; last_seen_at: string
  blocked_at: string | null; messages_in: number; blocked_reset: boolean
}
export interface ChatRow {
  bot_id: string; chat_id: number; owner_id: string; chat_type: string | null; first_message_at: string
  last_message_at: string; messages_in: number; messages_out: number
}
/**
 * A session's net change in a batch: `replace` (JSON text) when the batch set it whole (an import)
 * with every later patch of the batch applied, else the batch's merge patches (a JSON array, in log
 * order) for the stored session. Data JSON null: the session was deleted.
 */
export interface SessionRow {
  bot_id: string; session_key: string; owner_id: string; user_id: number | null; chat_id: number | null
  replace: string | null; patches: string; updated_at: string; version: number
}
/** An imported record, latest import per (bot, collection, key). */
export interface ImportedRecordRow {
  bot_id: string; collection: string; record_key: string; owner_id: string; record: string; source: string
  checksum: string; import_id: string; imported_at: string; version: number
}
export interface MessageRow {
  bot_id: string; version: number; owner_id: string; direction: "in" | "out"; chat_id: number
  user_id: number | null; message_id: number | null; in_reply_to: number | null; text: string | null
  delivery_state: "received" | "pending" | "sent"; call_id: string | null; at: string
}
export interface MessageOutcomeRow {
  bot_id: string; call_id: string; delivery_state: "sent" | "failed" | "unknown"; message_id: number | null; error: string | null
}
export interface DailyCountRow { bot_id: string; day: string; owner_id: string; messages_in: number; messages_out: number }
export interface ActiveUserRow { bot_id: string; day: string; user_id: number; owner_id: string }
export interface FirstSeenRow { bot_id: string; user_id: number; owner_id: string; day: string }
/** The chain fields are null as mapped (mapping is pure) and filled in by auditChain.ts before the insert. */
export interface AuditRow {
  bot_id: string; version: number; owner_id: string; actor: string; actor_kind: string; event_type: string
  summary: string; occurred_at: string; log_partition: number; position: string
  chain_seq: number | null; event_hash: string | null; prev_hash: string | null; row_hash: string | null
}
export interface ArchiveRow {
  bot_id: string; version: number; owner_id: string; log_partition: number; position: string; event_id: string
  type: string; schema_version: number; occurred_at: string; correlation_id: string; causation_id: string | null
  actor: string; data: string; recorded_at: string | null
}

/** Everything one batch writes, per table, already collapsed so no statement touches a row twice. */
export interface BatchRows {
  readonly owners: OwnerRow[]
  readonly botsRegistered: BotRow[]
  readonly botUpdates: BotUpdateRow[]
  readonly configPatches: ConfigPatchRow[]
  readonly users: UserRow[]
  readonly chats: ChatRow[]
  readonly sessions: SessionRow[]
  readonly importedRecords: ImportedRecordRow[]
  readonly messages: MessageRow[]
  readonly messageOutcomes: MessageOutcomeRow[]
  readonly dailyCounts: DailyCountRow[]
  readonly activeUsers: ActiveUserRow[]
  readonly firstSeen: FirstSeenRow[]
  readonly audit: AuditRow[]
  readonly archive: ArchiveRow[]
}
