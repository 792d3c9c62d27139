import { legacySessionTarget, USER_COLLECTIONS } from "../actors/decider/legacy.js"
import type { DomainEvent } from "../events/schema/catalogue.js"
import { ERASED, isSealed, parseSealed } from "./sealedValue.pure.js"

/*
 * Which fields of an event are a user's personal data, and whose (docs/privacy.md, "What is
 * sealed"). Pure: the sealing itself (keys, AES-GCM) is done by the caller through the functions
 * it passes in. Each event has at most one subject, the user whose key seals its personal fields:
 * the user it names (`userId`), else the private chat it is about (a private chat's id is its
 * user's id), else the `from` of a raw update. Ids stay in clear (they say whose key opens a
 * value); names, usernames and texts are sealed.
 */

/** Keys whose string values are personal wherever they sit in a raw update, a Bot API call's params or result, a legacy record. */
const PERSONAL_KEYS: ReadonlySet<string> = new Set([
  "first_name", "last_name", "username", "text", "caption", "phone_number", "bio", "address", "email",
  "firstName", "lastName", "name"
])

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

const positive = (n: unknown): number | null => (typeof n === "number" && Number.isSafeInteger(n) && n > 0 ? n : null)

/** The sender of a raw Telegram update: the `from` of its one payload (message, callback query...), else its private chat. */
export const updateSender = (update: unknown): number | null => {
  if (!isObject(update)) return null
  for (const [k, v] of Object.entries(update)) {
    if (k === "update_id" || !isObject(v)) continue
    const from = isObject(v["from"]) ? positive(v["from"]["id"]) : null
    if (from !== null) return from
    const chat = isObject(v["chat"]) && v["chat"]["type"] === "private" ? positive(v["chat"]["id"]) : null
    if (chat !== null) return chat
  }
  return null
}

/** A call's params or result: the private chat it addresses (a group's id is negative). */
const chatOfCall = (v: unknown): number | null => {
  if (!isObject(v)) return null
  return positive(v["chat_id"]) ?? (isObject(v["chat"]) ? positive(v["chat"]["id"]) : null)
}

/** The session key's user: `<from>:<chat>` (telegraf's default) names the user first. */
const sessionUser = (key: string): number | null => {
  const m = /^(\d+):-?\d+$/.exec(key)
  return m ? positive(Number(m[1])) : null
}

/**
 * Whose an imported legacy record is: a session's user (its key, either layout: `<from>:<chat>`
 * or telegraf-session-local's `<chat>:<from>`); a `users` record's user (its `id`, else its key);
 * a `chats` record's `id` (a private chat's id is its user's); any other record's sender or user
 * (`from_id`, `user_id`), else its private chat (`chat_id`). A record naming no positive id (a
 * group, a setting) has no subject and is not sealed. The `id` of a bot's own collection
 * (`data.todos`) is not taken for a user: it numbers the bot's own things.
 */
export const legacySubject = (collection: string, key: string, record: unknown): number | null => {
  if (collection === "sessions") return positive(legacySessionTarget(key).userId)
  const r = isObject(record) ? record : {}
  if (USER_COLLECTIONS.has(collection)) return positive(r["id"]) ?? (/^\d{1,16}$/.test(key) ? positive(Number(key)) : null)
  if (collection === "chats") return positive(r["id"])
  return positive(r["from_id"]) ?? positive(r["user_id"]) ?? positive(r["chat_id"])
}

/** The user whose key seals this event's personal fields; null: the event holds none (or none that is one user's). */
export const subjectOf = (e: DomainEvent): number | null => {
  switch (e._tag) {
    case "UserSeen":
    case "PersonalityAdapted":
      return positive(e.userId)
    case "MessageReceived":
    case "AiReplied":
      return positive(e.userId) ?? positive(e.chatId)
    case "ReplySent":
    case "ConversationSummarized":
      return positive(e.chatId)
    case "UpdateReceived":
      return updateSender(e.update)
    case "BotApiCallIntended":
      return chatOfCall(e.params)
    case "BotApiCallSucceeded":
      return chatOfCall(e.result)
    case "SessionChanged":
      return sessionUser(e.key)
    case "LegacyRecordImported":
      return legacySubject(e.collection, e.key, e.record)
    default:
      return null
  }
}

/** Maps every string under a personal key, at any depth (arrays and objects copied, nothing else touched). */
const mapPersonalDeep = (v: unknown, f: (s: string) => string, personal = false): unknown => {
  if (typeof v === "string") return personal ? f(v) : v
  if (Array.isArray(v)) return v.map((x) => mapPersonalDeep(x, f, personal))
  if (isObject(v)) {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) out[k] = mapPersonalDeep(x, f, personal || PERSONAL_KEYS.has(k))
    return out
  }
  return v
}

/** Maps every string leaf (a session patch: what a bot keeps of a user is theirs). */
const mapAllStrings = (v: unknown, f: (s: string) => string): unknown => mapPersonalDeep(v, f, true)

const opt = (s: string | undefined, f: (s: string) => string) => (s === undefined ? undefined : f(s))

/**
 * The event with `f` applied to each personal field (the fields `subjectOf` names a user for).
 * The same event back (same object) when it has none. `f` is given clear values only: a value
 * already sealed (a re-append of a read event) is left alone.
 */
export const mapPersonal = (e: DomainEvent, fIn: (s: string) => string): DomainEvent => {
  const f = (s: string) => (isSealed(s) || s === ERASED ? s : fIn(s))
  switch (e._tag) {
    case "UserSeen": {
      const out: Record<string, unknown> = { ...e, firstName: f(e.firstName) }
      if (e.lastName !== undefined) out["lastName"] = f(e.lastName)
      if (e.username !== undefined) out["username"] = f(e.username)
      return out as DomainEvent
    }
    case "MessageReceived":
      return e.text === undefined ? e : { ...e, text: opt(e.text, f)! }
    case "ReplySent":
      return { ...e, text: f(e.text) }
    case "AiReplied":
      return { ...e, user: f(e.user), assistant: f(e.assistant) }
    case "ConversationSummarized":
      return { ...e, summary: f(e.summary) }
    case "PersonalityAdapted":
      // the language a person writes in is theirs; formality and length are three-valued
      // literals, kept in clear (docs/privacy.md, "PersonalityAdapted")
      return e.language === undefined ? e : { ...e, language: f(e.language) }
    case "UpdateReceived":
      return { ...e, update: mapPersonalDeep(e.update, f) }
    case "BotApiCallIntended":
      return { ...e, params: mapPersonalDeep(e.params, f) }
    case "BotApiCallSucceeded":
      return { ...e, result: mapPersonalDeep(e.result, f) }
    case "SessionChanged":
      return { ...e, patch: mapAllStrings(e.patch, f) }
    case "LegacyRecordImported":
      // a session is what the old bot kept of its user, every string of it (as SessionChanged);
      // other records: the personal keys, as in a raw update
      return { ...e, record: e.collection === "sessions" ? mapAllStrings(e.record, f) : mapPersonalDeep(e.record, f) }
    default:
      return e
  }
}

/** Every sealed value anywhere in a payload, mapped with `f(userId, value)`; the same object back when it holds none. */
export const mapSealed = <A>(v: A, f: (userId: number, sealed: string) => string): A => {
  let changed = false
  const walk = (x: unknown): unknown => {
    if (typeof x === "string") {
      const p = isSealed(x) ? parseSealed(x) : null
      if (p === null) return x
      changed = true
      return f(p.userId, x)
    }
    if (Array.isArray(x)) return x.map(walk)
    if (isObject(x)) {
      const out: Record<string, unknown> = {}
      for (const [k, y] of Object.entries(x)) out[k] = walk(y)
      return out
    }
    return x
  }
  const out = walk(v)
  return changed ? (out as A) : v
}

/** The users named in the sealed values of a payload (each once). */
export const sealedUsers = (v: unknown): ReadonlySet<number> => {
  const users = new Set<number>()
  mapSealed(v, (u, s) => {
    users.add(u)
    return s
  })
  return users
}

/** Whether the event has a personal field of `userId` in clear (written before sealing, or by a writer that does not seal). */
export const hasClearPersonal = (e: DomainEvent, userId: number): boolean => {
  if (subjectOf(e) !== userId) return false
  let clear = false
  mapPersonal(e, (s) => {
    clear = true
    return s
  })
  return clear
}

/** Whether a value holds an erased field anywhere (an input of a forgotten user). */
export const containsErased = (v: unknown): boolean => {
  if (v === ERASED) return true
  if (Array.isArray(v)) return v.some(containsErased)
  if (isObject(v)) return Object.values(v).some(containsErased)
  return false
}
