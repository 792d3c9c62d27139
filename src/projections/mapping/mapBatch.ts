import type { DomainEvent } from "../../events/schema/catalogue.js"
import type { RecordedEvent } from "../../events/schema/envelope.js"
import { actorKind, auditSummary } from "./audit.js"
import type {
  ActiveUserRow, BatchRows, BotUpdateRow, ChatRow, DailyCountRow, ImportedRecordRow, MappingFailure, MessageOutcomeRow, OwnerRow,
  ProjectionInput, UserRow
} from "./rows.js"
import { legacyChatOf, sessionParties } from "./legacyRows.js"
import { legacySessionTarget, legacyUserOf } from "../../actors/decider/legacy.js"
import { mergePatch } from "../../actors/decider/mergePatch.js"
import type { Json } from "../../actors/decider/mergePatch.js"
import { epochMs as parseEpochMs, utcDay as dayOf } from "../../events/schema/time.js"
import { FLEET_OWNER, isFleetEvent } from "./fleet.js"
import { parseOwnerId } from "../../events/ownerId.js"

export interface MappedBatch {
  readonly rows: BatchRows
  readonly failures: ReadonlyArray<MappingFailure>
  /** Positions mapped (or refused), in input order. */
  readonly positions: ReadonlyArray<string>
}

class Refused {
  constructor(readonly reason: string) {}
}

const safeInt = (n: unknown, what: string): number => {
  if (typeof n !== "number" || !Number.isSafeInteger(n)) throw new Refused(`${what} must be an integer, got ${String(n)}`)
  return n
}
const optInt = (n: unknown, what: string): number | null => (n === undefined || n === null ? null : safeInt(n, what))

const state: Partial<Record<DomainEvent["_tag"], string>> = {
  BotRegistered: "registered",
  BotStarted: "running",
  BotStopped: "stopped",
  BotCrashed: "crashed",
  BotGaveUp: "failed",
  BotRemoved: "removed"
}

/**
 * Maps a batch of log entries, in log order, to the rows every projection writes. Pure and
 * deterministic: the same entries give the same rows, which is what makes a rebuild equal the
 * live tables. Rows are collapsed per key (one upsert per bot, user, chat, day), so each
 * multi-row statement touches a row at most once. An entry that cannot be projected (unknown
 * bot, malformed time or id) is refused with a reason and contributes nothing.
 *
 * `owners` maps bot id -> owner id for bots registered before this batch (looked up in the bots
 * table by the caller); bots registered in the batch are added as they come.
 */
export const mapBatch = (inputs: ReadonlyArray<ProjectionInput>, owners: ReadonlyMap<string, string>): MappedBatch => {
  // instants repeat a lot within a batch (same second, same day): parse each text once
  const parsed = new Map<string, number | undefined>()
  const epochMs = (iso: string): number | undefined => {
    if (parsed.has(iso)) return parsed.get(iso)
    const ms = parseEpochMs(iso)
    parsed.set(iso, ms)
    return ms
  }
  const days = new Map<number, string>()
  const utcDay = (ms: number): string => {
    const n = Math.floor(ms / 86_400_000)
    let d = days.get(n)
    if (d === undefined) {
      d = dayOf(ms)
      days.set(n, d)
    }
    return d
  }
  const ownerOf = new Map(owners)
  const seen = new Set<string>()
  const failures: MappingFailure[] = []
  const positions: string[] = []

  const ownerRows = new Map<string, OwnerRow>()
  const botsRegistered: BatchRows["botsRegistered"] = []
  const botUpdates = new Map<string, BotUpdateRow>()
  const configPatches: BatchRows["configPatches"] = []
  const users = new Map<string, UserRow>()
  const chats = new Map<string, ChatRow>()
  const messages: BatchRows["messages"] = []
  const outcomes = new Map<string, MessageOutcomeRow>()
  const daily = new Map<string, DailyCountRow>()
  const active = new Map<string, ActiveUserRow>()
  const firstSeen = new Map<string, BatchRows["firstSeen"][number]>()
  const audit: BatchRows["audit"] = []
  const archive: BatchRows["archive"] = []
  const sessions = new Map<string, { row: Omit<BatchRows["sessions"][number], "replace" | "patches">; replace: { value: Json } | null; patches: unknown[] }>()
  const imported = new Map<string, ImportedRecordRow>()

  // Collapsing a batch must give what applying its events one batch at a time gives, so each
  // merge below mirrors the SQL that merges a batch into stored rows (GREATEST, COALESCE...).
  const latestActivity = (upd: BotUpdateRow, at: string, ms: number) => {
    if (upd.last_activity_at === null || ms > (epochMs(upd.last_activity_at) ?? ms)) upd.last_activity_at = at
  }
  // callIds are unique per bot (the decider makes them); later outcomes win, as the UPDATE's COALESCEs do
  const outcome = (o: MessageOutcomeRow) => {
    const key = `${o.bot_id}\u0000${o.call_id}`
    const before = outcomes.get(key)
    outcomes.set(key, before ? { ...o, message_id: o.message_id ?? before.message_id, error: o.error ?? before.error } : o)
  }

  // batch-level helpers (not closures made per event: tsx wraps each closure it creates, which
  // showed up as the top cost in profiles)
  /** The time of a message-like fact: its own `at` when well-formed, else when the event occurred. */
  const atOf = (e: RecordedEvent, occurredMs: number, at: string | undefined): { at: string; ms: number } => {
    const ms = at === undefined ? undefined : epochMs(at)
    return ms === undefined ? { at: e.occurredAt, ms: occurredMs } : { at: at!, ms }
  }
  const dailyRow = (bot_id: string, owner: string, ms: number) => {
    const day = utcDay(ms)
    const key = `${bot_id}\u0000${day}`
    let row = daily.get(key)
    if (!row) {
      row = { bot_id, day, owner_id: owner, messages_in: 0, messages_out: 0 }
      daily.set(key, row)
    }
    return row
  }
  const userRow = (bot_id: string, owner: string, userId: number, at: string, ms: number) => {
    const key = `${bot_id}\u0000${userId}`
    let row = users.get(key)
    if (!row) {
      row = {
        bot_id, user_id: userId, owner_id: owner, first_name: null, last_name: null, username: null, language_code: null,
        first_seen_at: at, last_seen_at: at, blocked_at: null, messages_in: 0, blocked_reset: false
      }
      users.set(key, row)
      firstSeen.set(key, { bot_id, user_id: userId, owner_id: owner, day: utcDay(ms) })
    }
    if (ms < (epochMs(row.first_seen_at) ?? ms)) row.first_seen_at = at
    if (ms > (epochMs(row.last_seen_at) ?? ms)) row.last_seen_at = at
    return row
  }
  const chatRow = (bot_id: string, owner: string, chatId: number, chatType: string | null, at: string, ms: number) => {
    const key = `${bot_id}\u0000${chatId}`
    let row = chats.get(key)
    if (!row) {
      row = { bot_id, chat_id: chatId, owner_id: owner, chat_type: null, first_message_at: at, last_message_at: at, messages_in: 0, messages_out: 0 }
      chats.set(key, row)
    }
    if (chatType !== null) row.chat_type = chatType
    if (ms < (epochMs(row.first_message_at) ?? ms)) row.first_message_at = at
    if (ms > (epochMs(row.last_message_at) ?? ms)) row.last_message_at = at
    return row
  }

  /** A session's change: a whole value (an import) or a merge patch, collapsed in log order. */
  const sessionChange = (bot_id: string, owner: string, key: string, at: string, version: number, change: { whole: Json } | { patch: unknown }) => {
    const k = `${bot_id}\u0000${key}`
    let s = sessions.get(k)
    if (!s) {
      const { userId, chatId } = sessionParties(key)
      s = { row: { bot_id, session_key: key, owner_id: owner, user_id: userId, chat_id: chatId, updated_at: at, version }, replace: null, patches: [] }
      sessions.set(k, s)
    }
    s.row.updated_at = at
    s.row.version = version
    if ("whole" in change) {
      s.replace = { value: change.whole }
      s.patches = []
    } else if (s.replace) s.replace = { value: mergePatch(s.replace.value, change.patch) }
    else s.patches.push(change.patch ?? null)
  }

  const mapOne = ({ event: e, raw }: ProjectionInput) => {
    const occurredMs = epochMs(e.occurredAt)
    if (occurredMs === undefined) throw new Refused(`occurredAt is not an ISO-8601 instant: ${e.occurredAt}`)
    if (!Number.isSafeInteger(e.version) || e.version < 1) throw new Refused(`version must be a positive integer, got ${e.version}`)
    const d = e.data
    if (d._tag === "BotRegistered") {
      // never recorded since owner ids are checked at append; an older or foreign entry is refused
      // here rather than given rows no owner session could tell apart from "no owner"
      const valid = parseOwnerId(d.ownerId)
      if (valid._tag === "Left") throw new Refused(valid.left.message)
    }
    const owner = ownerOf.get(e.botId) ?? (d._tag === "BotRegistered" ? d.ownerId : isFleetEvent(d) ? FLEET_OWNER : undefined)
    if (owner === undefined) throw new Refused(`bot ${e.botId} has no BotRegistered before this event: its owner is unknown`)
    const bot_id = e.botId
    // validate everything first, so a refused event leaves no partial rows behind
    const ids = {
      chat: "chatId" in d ? safeInt(d.chatId, "chatId") : null,
      user: "userId" in d ? optInt(d.userId, "userId") : null,
      message: "messageId" in d ? safeInt(d.messageId, "messageId") : null,
      inReplyTo: d._tag === "ReplySent" ? optInt(d.inReplyTo, "inReplyTo") : null
    }
    const schemaVersion = Number(raw["schemaVersion"])
    // the payload decoded, so the stored text is JSON: archived as is, not parsed again
    const dataJson = raw["data"]
    if (typeof dataJson !== "string") throw new Refused("stored data is missing")
    if (!Number.isSafeInteger(schemaVersion)) throw new Refused("stored schemaVersion is not an integer")
    // valid: from here on nothing throws, so a refused event never leaves partial rows behind
    ownerOf.set(bot_id, owner)

    // --- archive: every event, as stored
    archive.push({
      bot_id, version: e.version, owner_id: owner, log_partition: e.partition, position: e.position, event_id: e.eventId,
      type: e.type, schema_version: schemaVersion, occurred_at: e.occurredAt, correlation_id: e.correlationId,
      causation_id: e.causationId, actor: e.actor, data: dataJson, recorded_at: e.recordedAt ?? null
    })

    // --- audit
    const summary = auditSummary(d)
    if (summary !== null) {
      audit.push({
        bot_id, version: e.version, owner_id: owner, actor: e.actor, actor_kind: actorKind(e.actor), event_type: e.type,
        summary: JSON.stringify(summary), occurred_at: e.occurredAt, log_partition: e.partition, position: e.position,
        chain_seq: null, event_hash: null, prev_hash: null, row_hash: null
      })
    }

    // fleet events have no bot: archived and audited only
    if (isFleetEvent(d)) return

    // --- bots (and owners)
    const upd = botUpdates.get(bot_id) ?? {
      bot_id, version: e.version, last_event_at: e.occurredAt, state: null, node_id: null, last_error: null,
      removed_at: null, has_token: null, token_rotated_at: null, last_activity_at: null, inbox_lag_ms: null
    }
    botUpdates.set(bot_id, upd)
    upd.version = e.version
    upd.last_event_at = e.occurredAt
    upd.state = state[d._tag] ?? upd.state

    switch (d._tag) {
      case "BotRegistered": {
        botsRegistered.push({
          bot_id, owner_id: owner, name: d.name, kind: d.kind, mode: d.mode,
          config: JSON.stringify(typeof d.config === "object" && d.config !== null && !Array.isArray(d.config) ? d.config : {}),
          has_token: d.tokenCiphertext !== undefined, registered_at: e.occurredAt, version: e.version, log_partition: e.partition
        })
        const o = ownerRows.get(owner) ?? { owner_id: owner, first_bot_at: e.occurredAt, bots: 0 }
        ownerRows.set(owner, o)
        o.bots += 1
        if (occurredMs < (epochMs(o.first_bot_at) ?? occurredMs)) o.first_bot_at = e.occurredAt
        break
      }
      case "BotConfigChanged":
        configPatches.push({ bot_id, patch: JSON.stringify(d.patch ?? null) })
        break
      case "BotTokenRotated":
        upd.has_token = true
        upd.token_rotated_at = e.occurredAt
        break
      case "BotStarted":
        upd.node_id = d.nodeId
        break
      case "BotStopped":
        upd.node_id = d.nodeId
        break
      case "BotCrashed":
        upd.node_id = d.nodeId
        upd.last_error = auditSummary(d)?.["reason"] as string
        break
      case "BotGaveUp":
        upd.last_error = auditSummary(d)?.["lastError"] as string
        break
      case "BotRemoved": {
        upd.removed_at = e.occurredAt
        const o = ownerRows.get(owner) ?? { owner_id: owner, first_bot_at: e.occurredAt, bots: 0 }
        ownerRows.set(owner, o)
        o.bots -= 1
        break
      }
      case "UpdateReceived": {
        const received = epochMs(d.receivedAt)
        if (received !== undefined) upd.inbox_lag_ms = Math.max(0, Math.min(2_147_483_647, occurredMs - received))
        break
      }
      case "MessageReceived": {
        const { at, ms } = atOf(e, occurredMs, d.at)
        latestActivity(upd, at, ms)
        chatRow(bot_id, owner, ids.chat!, d.chatType, at, ms).messages_in += 1
        messages.push({
          bot_id, version: e.version, owner_id: owner, direction: "in", chat_id: ids.chat!, user_id: ids.user,
          message_id: ids.message, in_reply_to: null, text: d.text ?? null, delivery_state: "received", call_id: null, at
        })
        dailyRow(bot_id, owner, ms).messages_in += 1
        if (ids.user !== null) {
          userRow(bot_id, owner, ids.user, at, ms).messages_in += 1
          const key = `${bot_id}\u0000${utcDay(ms)}\u0000${ids.user}`
          if (!active.has(key)) active.set(key, { bot_id, day: utcDay(ms), user_id: ids.user, owner_id: owner })
        }
        break
      }
      case "ReplySent": {
        const { at, ms } = atOf(e, occurredMs, d.at)
        latestActivity(upd, at, ms)
        chatRow(bot_id, owner, ids.chat!, null, at, ms).messages_out += 1
        messages.push({
          bot_id, version: e.version, owner_id: owner, direction: "out", chat_id: ids.chat!, user_id: null,
          message_id: ids.message, in_reply_to: ids.inReplyTo, text: d.text, delivery_state: "sent", call_id: null, at
        })
        dailyRow(bot_id, owner, ms).messages_out += 1
        break
      }
      case "BotApiCallIntended": {
        const p = d.params as Record<string, unknown> | null
        if (d.method === "sendMessage" && typeof p === "object" && p !== null && Number.isSafeInteger(p["chat_id"])) {
          messages.push({
            bot_id, version: e.version, owner_id: owner, direction: "out", chat_id: p["chat_id"] as number, user_id: null,
            message_id: null, in_reply_to: null, text: typeof p["text"] === "string" ? p["text"] : null,
            delivery_state: "pending", call_id: d.callId, at: e.occurredAt
          })
        }
        break
      }
      case "BotApiCallSucceeded": {
        const r = d.result as Record<string, unknown> | null
        const messageId = typeof r === "object" && r !== null && Number.isSafeInteger(r["message_id"]) ? (r["message_id"] as number) : null
        outcome({ bot_id, call_id: d.callId, delivery_state: "sent", message_id: messageId, error: null })
        break
      }
      case "BotApiCallFailed":
        outcome({
          bot_id, call_id: d.callId, delivery_state: "failed", message_id: null,
          error: auditSummary(d)?.["description"] as string
        })
        break
      case "BotApiCallOutcomeUnknown":
        outcome({
          bot_id, call_id: d.callId, delivery_state: "unknown", message_id: null, error: auditSummary(d)?.["reason"] as string
        })
        break
      case "UserSeen": {
        const { at, ms } = atOf(e, occurredMs, d.at)
        const row = userRow(bot_id, owner, ids.user!, at, ms)
        row.first_name = d.firstName
        row.last_name = d.lastName ?? null
        row.username = d.username ?? null
        row.language_code = d.languageCode ?? null
        break
      }
      case "UserBlockedBot": {
        const { at, ms } = atOf(e, occurredMs, d.at)
        const row = userRow(bot_id, owner, ids.user!, at, ms)
        row.blocked_at ??= at
        break
      }
      case "UserUnblockedBot": {
        const { at, ms } = atOf(e, occurredMs, d.at)
        const row = userRow(bot_id, owner, ids.user!, at, ms)
        row.blocked_at = null
        row.blocked_reset = true
        break
      }
      case "SessionChanged":
        sessionChange(bot_id, owner, d.key, e.occurredAt, e.version, { patch: d.patch })
        break
      case "LegacyRecordImported": {
        // what the fold makes of it (actors/decider/legacy.ts), so the tables show the bot's state
        const { at, ms } = atOf(e, occurredMs, d.at)
        imported.set(`${bot_id}\u0000${d.collection}\u0000${d.key}`, {
          bot_id, collection: d.collection, record_key: d.key, owner_id: owner, record: JSON.stringify(d.record ?? null),
          source: d.source, checksum: d.checksum, import_id: d.importId, imported_at: at, version: e.version
        })
        if (d.collection === "sessions") sessionChange(bot_id, owner, legacySessionTarget(d.key).key, at, e.version, { whole: (d.record ?? null) as Json })
        const user = legacyUserOf(d)
        if (user) {
          const row = userRow(bot_id, owner, user.userId, at, ms)
          if (user.profile) {
            row.first_name = user.profile.firstName
            row.last_name = user.profile.lastName ?? null
            row.username = user.profile.username ?? null
            row.language_code = user.profile.languageCode ?? null
          }
        }
        const chat = legacyChatOf(d)
        if (chat) chatRow(bot_id, owner, chat.chatId, chat.chatType, at, ms)
        break
      }
      case "UpdateDuplicateDropped":
      case "UpdateFailed":
      case "SnapshotTaken":
      case "FleetSettingChanged":
      case "UserForgotten":
      case "AiReplied":
      case "ConversationSummarized":
      case "AiFallbackUsed":
      case "PersonalityAdapted":
        break
      default:
        absurd(d)
    }
  }

  for (const input of inputs) {
    const e: RecordedEvent = input.event
    positions.push(e.position)
    const key = `${e.botId}\u0000${e.version}`
    if (seen.has(key)) continue // the same event twice in one batch: once is enough
    seen.add(key)
    try {
      mapOne(input)
    } catch (err) {
      if (err instanceof Refused) failures.push({ position: e.position, reason: err.reason })
      else throw err
    }
  }

  return {
    positions,
    failures,
    rows: {
      // owners are shared by projectors of different partitions: rows in key order, so two
      // transactions lock them in the same order and cannot deadlock
      owners: [...ownerRows.values()].sort((a, b) => (a.owner_id < b.owner_id ? -1 : a.owner_id > b.owner_id ? 1 : 0)),
      botsRegistered,
      botUpdates: [...botUpdates.values()],
      configPatches,
      users: [...users.values()],
      chats: [...chats.values()],
      sessions: [...sessions.values()].map((x) => ({
        ...x.row,
        replace: x.replace ? JSON.stringify(x.replace.value) : null,
        patches: JSON.stringify(x.patches)
      })),
      importedRecords: [...imported.values()],
      messages,
      messageOutcomes: [...outcomes.values()],
      dailyCounts: [...daily.values()],
      activeUsers: [...active.values()],
      firstSeen: [...firstSeen.values()],
      audit,
      archive
    }
  }
}

const absurd = (x: never): never => {
  throw new Error(`unhandled event ${JSON.stringify(x)}`)
}
