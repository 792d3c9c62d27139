import type { DomainEvent } from "../../events/schema/catalogue.js"
import type { Json } from "./mergePatch.js"
import { adaptationKey, legacyKey, sessionKey, userKey } from "./entryKeys.js"
import type { KnownUser } from "./entryKeys.js"
import { keysOfLegacy } from "./legacy.js"
import { PersistentMap } from "./persistentMap.js"
import { aiKeysOfEvent } from "../../ai/aiFold.pure.js"

/*
 * The keyed part of a bot's state: one entry per user (`u:<id>`) and per telegraf session
 * (`s:<key>`). A popular bot knows millions of users, yet an update reads and writes the entries
 * of its own user and chat only. So the state holds the bot-level part whole (small) and its
 * entries partly: the ones resident in the actor (loaded on demand, written back to the snapshot
 * store when changed, evicted when idle). A fold from version 1 (replay, inspect) holds them all.
 */

export type { KnownUser }
export { adaptationKey, legacyKey, sessionKey, userKey }

/** An entry a fold needed was not loaded: the actor must load it first (a bug if it did not). */
export class EntryNotLoaded extends Error {
  constructor(readonly key: string) {
    super(`state entry ${key} is not loaded`)
    this.name = "EntryNotLoaded"
  }
}

/**
 * The entries a state holds. `complete`: every entry of the bot is here (a fold from version 1
 * that never evicted), so a key absent is a key that does not exist. Otherwise a key is either
 * resident (a value, or `null`: known not to exist) or not loaded.
 */
export class Entries {
  private constructor(
    private readonly map: PersistentMap<string, Json | null>,
    readonly complete: boolean
  ) {}

  static empty(complete: boolean): Entries {
    return new Entries(PersistentMap.empty(), complete)
  }

  /** Resident keys (including the known-absent ones). */
  get resident(): number {
    return this.map.size
  }

  isLoaded(key: string): boolean {
    return this.complete || this.map.has(key)
  }

  /** The entry's value, undefined when it does not exist; throws EntryNotLoaded when not resident. */
  read(key: string): Json | undefined {
    const v = this.map.get(key)
    if (v !== undefined) return v === null ? undefined : v
    if (this.complete || this.map.has(key)) return undefined
    throw new EntryNotLoaded(key)
  }

  /** Sets (or, with null, deletes) an entry; the key must be resident (see `read`). */
  write(key: string, value: Json | null): Entries {
    if (!this.isLoaded(key)) throw new EntryNotLoaded(key)
    if (value === null && this.complete) return new Entries(this.map.without(key), true)
    return new Entries(this.map.with(key, value), this.complete)
  }

  /** Adds loaded values (null: does not exist) for keys not resident yet; resident ones are newer and kept. */
  withLoaded(loaded: Iterable<readonly [string, Json | null]>): Entries {
    let map = this.map
    for (const [k, v] of loaded) if (!map.has(k)) map = map.with(k, v)
    return map === this.map ? this : new Entries(map, this.complete)
  }

  /** Drops resident keys (they must be unchanged since the store was written); the state is partial from then on. */
  evict(keys: Iterable<string>): Entries {
    let map = this.map
    for (const k of keys) map = map.without(k)
    return new Entries(map, false)
  }

  /** A partial copy: what a snapshot-hydrated actor starts from. */
  partial(): Entries {
    return this.complete ? new Entries(this.map, false) : this
  }

  /** Existing entries (known-absent keys left out). */
  *values(): Generator<readonly [string, Json]> {
    for (const [k, v] of this.map) if (v !== null) yield [k, v]
  }

  value(key: string): Json | null | undefined {
    return this.map.get(key)
  }

  keys(): IterableIterator<string> {
    return this.map.keys()
  }
}

/** The user entry of `userId`, or undefined when the bot does not know the user. */
export const readUser = (entries: Entries, userId: number): KnownUser | undefined =>
  entries.read(userKey(userId)) as KnownUser | undefined

/** The session stored under telegraf's key (e.g. `<from>:<chat>`), or undefined. */
export const readSession = (entries: Entries, key: string): Json | undefined => entries.read(sessionKey(key))

/** A user as stored: JSON without undefined fields, so a stored and a folded user compare equal. */
export const userEntry = (u: KnownUser): Json => {
  const out: Record<string, Json> = { firstName: u.firstName, firstSeen: u.firstSeen, lastSeen: u.lastSeen, blocked: u.blocked }
  if (u.lastName !== undefined) out["lastName"] = u.lastName
  if (u.username !== undefined) out["username"] = u.username
  if (u.languageCode !== undefined) out["languageCode"] = u.languageCode
  if (u.blockedAt !== undefined) out["blockedAt"] = u.blockedAt
  if (u.blockedAfterEntry !== undefined) out["blockedAfterEntry"] = u.blockedAfterEntry
  return out
}

const isPrivateWriter = (e: { readonly chatType: string; readonly chatId: number; readonly userId?: number | undefined }) =>
  e.chatType === "private" && e.userId !== undefined && e.userId === e.chatId

/** The entries `evolve` reads or writes for this event: they must be resident before it is folded. */
export const keysOfEvent = (e: DomainEvent): ReadonlyArray<string> => {
  switch (e._tag) {
    case "UserSeen":
    case "UserBlockedBot":
      return [userKey(e.userId)]
    case "MessageReceived":
      return isPrivateWriter(e) ? [userKey(e.userId!)] : []
    case "SessionChanged":
      return [sessionKey(e.key)]
    case "LegacyRecordImported":
      return keysOfLegacy(e)
    case "AiReplied":
    case "ConversationSummarized":
    case "AiFallbackUsed":
    case "PersonalityAdapted":
      return aiKeysOfEvent(e)
    default:
      return []
  }
}

/** The entries these events need resident, without repeats. */
export const keysOfEvents = (events: Iterable<DomainEvent>): ReadonlyArray<string> => {
  const keys = new Set<string>()
  for (const e of events) for (const k of keysOfEvent(e)) keys.add(k)
  return [...keys]
}

const idOf = (v: unknown): number | undefined => (typeof v === "number" && Number.isSafeInteger(v) ? v : undefined)

/**
 * The entries an update is expected to touch: the user it comes from, the user of its private
 * chat and their telegraf session (`<from>:<chat>`). Others (a chat's AI memory, a user's
 * adaptation) are loaded when bot code first reads them (NeedsEntries). Loaded before the update is decided, and the
 * key set that keeps two updates of one conversation apart when a batch is decided together.
 */
export const keysOfUpdate = (update: unknown): ReadonlyArray<string> => {
  if (typeof update !== "object" || update === null) return []
  const keys = new Set<string>()
  for (const v of Object.values(update as Record<string, unknown>)) {
    if (typeof v !== "object" || v === null) continue
    const o = v as { from?: { id?: unknown }; chat?: { id?: unknown; type?: unknown }; message?: { chat?: { id?: unknown; type?: unknown } } }
    const from = idOf(o.from?.id)
    const chat = o.chat ?? o.message?.chat
    const chatId = idOf(chat?.id)
    if (from !== undefined) keys.add(userKey(from))
    if (chatId !== undefined && chatId > 0) keys.add(userKey(chatId))
    if (from !== undefined && chatId !== undefined) keys.add(sessionKey(`${from}:${chatId}`))
  }
  return [...keys]
}

/**
 * What keeps two updates apart in a batch decided together: the entries they touch, and their
 * chat (a group's updates come from many users but must stay in order too).
 */
export const lanesOfUpdate = (update: unknown): ReadonlyArray<string> => {
  const lanes = [...keysOfUpdate(update)]
  if (typeof update !== "object" || update === null) return lanes
  for (const v of Object.values(update as Record<string, unknown>)) {
    const o = v as { chat?: { id?: unknown }; message?: { chat?: { id?: unknown } } } | null
    const chatId = typeof o === "object" && o !== null ? idOf((o.chat ?? o.message?.chat)?.id) : undefined
    if (chatId !== undefined) lanes.push(`chat:${chatId}`)
  }
  return lanes
}

/** Keys a bot kind's code read while deciding; keys it asked for that were not resident. */
export interface EntryReads {
  readonly read: Set<string>
  readonly missing: Set<string>
}

export const newEntryReads = (): EntryReads => ({ read: new Set(), missing: new Set() })

/**
 * Reads an entry for bot code, recording the key. A key that is not resident reads as absent and
 * is recorded as missing: the decision made with it is thrown away, the key loaded, and the update
 * decided again (so what bot code sees never depends on what happened to be resident, even when
 * it catches errors).
 */
export const trackedRead = (entries: Entries, reads: EntryReads, key: string): Json | undefined => {
  reads.read.add(key)
  if (!entries.isLoaded(key)) {
    reads.missing.add(key)
    return undefined
  }
  return entries.read(key)
}

/** Entries from stored values; `complete` when that is all of them. */
export const entriesFrom = (values: Iterable<readonly [string, Json]>, complete: boolean): Entries =>
  Entries.empty(complete).withLoaded(values)
