import type { EventOf } from "../../events/schema/catalogue.js"
import { legacyKey, sessionKey, userKey } from "./entryKeys.js"
import type { KnownUser } from "./entryKeys.js"

/*
 * How an imported legacy record (LegacyRecordImported) becomes bot state. Pure: the fold, the
 * keys an event touches (keysOfEvent), the reconciliation and the projections all use these, so
 * they agree on where every record went.
 *
 * - `sessions` (telegraf-session-local): the session's data becomes the session entry the
 *   telegraf kind reads as `ctx.session` for the same user and chat (see `legacySessionTarget`),
 *   and the session's user becomes a known user (a returning user, not a stranger).
 * - `users` (generic layout) and `data.users` (a telegraf-session-local top-level `users`) whose
 *   records look like Telegram users (integer `id`, not a bot): user entries with name, username
 *   and language.
 * - every record except sessions is also kept verbatim as a legacy entry `l:<collection>:<key>`,
 *   read-only for bot code (`ctx.legacy`), so nothing the old bot stored is out of reach.
 */

/** When an import event carries no time (events written before it did): the state must still be deterministic. */
export const UNKNOWN_TIME = "1970-01-01T00:00:00.000Z"

/** Where an imported session lives in the bot's state: its session key, and the user it belongs to. */
export interface SessionTarget {
  /** The key the telegraf kind uses for this user and chat (`<from>:<chat>`), or the id verbatim. */
  readonly key: string
  readonly userId: number | undefined
}

const FROM_FIRST = /^(\d{1,16}):(-\d{1,16})$/
const CHAT_FIRST = /^(-?\d{1,20}):(\d{1,16})$/

const safeUser = (digits: string): number | undefined => {
  const n = Number(digits)
  return Number.isSafeInteger(n) && n > 0 ? n : undefined
}

/**
 * The session key the runtime reads for a telegraf-session-local session id.
 * telegraf-session-local keys sessions chat first (`<chat>:<from>`; `<from>:<from>` for inline
 * queries and private chats, `<chat_instance>:<from>` for callbacks without a chat); telegraf's
 * own session, which botfleet's telegraf kind follows, keys them `<from>:<chat>`. User ids are
 * positive and group ids negative, so the two layouts never collide: `<negative>:<positive>` and
 * `<a>:<b>` with both positive are chat first and are turned round; `<positive>:<negative>` is
 * already `<from>:<chat>`; anything else (a custom getSessionKey) is kept verbatim, readable by
 * key through `ctx.botState.sessions.get(id)`.
 */
export const legacySessionTarget = (id: string): SessionTarget => {
  const fromFirst = FROM_FIRST.exec(id)
  if (fromFirst) {
    const userId = safeUser(fromFirst[1]!)
    return { key: id, userId }
  }
  const chatFirst = CHAT_FIRST.exec(id)
  if (chatFirst) {
    const [, chat, from] = chatFirst as unknown as [string, string, string]
    const userId = safeUser(from)
    // a chat_instance beyond 2^53 is no chat id: no update ever carries it as a chat, keep it as is
    if (userId === undefined || !Number.isSafeInteger(Number(chat))) return { key: id, userId }
    return { key: `${from}:${chat}`, userId }
  }
  return { key: id, userId: undefined }
}

/** A legacy user's profile, when a record is one (see the module comment). */
export interface LegacyProfile {
  readonly userId: number
  readonly firstName: string
  readonly lastName?: string | undefined
  readonly username?: string | undefined
  readonly languageCode?: string | undefined
}

const optString = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined)

/** The collections whose records may be Telegram users. */
export const USER_COLLECTIONS: ReadonlySet<string> = new Set(["users", "data.users"])

export const legacyProfile = (collection: string, record: unknown): LegacyProfile | undefined => {
  if (!USER_COLLECTIONS.has(collection) || typeof record !== "object" || record === null || Array.isArray(record)) return undefined
  const r = record as Record<string, unknown>
  const id = r["id"]
  if (typeof id !== "number" || !Number.isSafeInteger(id) || id <= 0 || r["is_bot"] === true) return undefined
  return {
    userId: id,
    firstName: optString(r["first_name"]) ?? "",
    lastName: optString(r["last_name"]),
    username: optString(r["username"]),
    languageCode: optString(r["language_code"])
  }
}

/** The user an imported record makes known, if any: a profile, or the owner of a session. */
export const legacyUserOf = (e: EventOf<"LegacyRecordImported">): { readonly userId: number; readonly profile?: LegacyProfile } | undefined => {
  if (e.collection === "sessions") {
    const { userId } = legacySessionTarget(e.key)
    return userId === undefined ? undefined : { userId }
  }
  const profile = legacyProfile(e.collection, e.record)
  return profile ? { userId: profile.userId, profile } : undefined
}

/** The entries folding this event reads or writes. */
export const keysOfLegacy = (e: EventOf<"LegacyRecordImported">): ReadonlyArray<string> => {
  const user = legacyUserOf(e)
  const own = e.collection === "sessions" ? sessionKey(legacySessionTarget(e.key).key) : legacyKey(e.collection, e.key)
  return user ? [own, userKey(user.userId)] : [own]
}

/**
 * The user an imported record leaves: a profile replaces the name, username and language (what the
 * old bot knew is the latest the bot knows) and keeps what the bot learned itself (first seen,
 * blocks); a session's user who is not known yet becomes known without a name (the next update
 * from them brings it).
 */
export const legacyUser = (before: KnownUser | undefined, profile: LegacyProfile | undefined, at: string): KnownUser | undefined => {
  if (!profile) {
    if (before) return undefined
    return { firstName: "", firstSeen: at, lastSeen: at, blocked: false }
  }
  return {
    firstName: profile.firstName,
    lastName: profile.lastName,
    username: profile.username,
    languageCode: profile.languageCode,
    firstSeen: before?.firstSeen ?? at,
    lastSeen: before?.lastSeen ?? at,
    blocked: before?.blocked ?? false,
    blockedAt: before?.blockedAt,
    blockedAfterEntry: before?.blockedAfterEntry
  }
}
