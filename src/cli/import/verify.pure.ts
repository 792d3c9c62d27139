import { legacyKey, sessionKey, userKey } from "../../actors/decider/entries.js"
import type { Entries, KnownUser } from "../../actors/decider/entries.js"
import { legacyProfile, legacySessionTarget } from "../../actors/decider/legacy.js"
import { sameJson } from "./json.pure.js"
import { recordChecksum } from "./records.pure.js"
import type { Hasher, LegacyRecord } from "./records.pure.js"

/*
 * `botfleet import --verify`, the pure part: every record of the files against the bot's folded
 * state (as the import left it) and against the projections, counts per collection and a checksum
 * per record. What is read from the state and the tables is passed in.
 */

/** What the projections hold of a bot's import (read under the bot owner's row-level security). */
export interface ProjectedImport {
  /** imported_records: (collection, key) → the record as stored. */
  readonly records: ReadonlyMap<string, unknown>
  /** bot_sessions: runtime session key → data, and the version that last wrote it. */
  readonly sessions: ReadonlyMap<string, { readonly data: unknown; readonly version: number }>
  readonly users: ReadonlySet<number>
  readonly chats: ReadonlySet<number>
}

export type VerifyPlace = "state" | "imported_records" | "bot_sessions" | "bot_users" | "chats"

export interface VerifyDifference {
  readonly collection: string
  readonly key: string
  readonly source: string
  readonly place: VerifyPlace
  readonly problem: "missing" | "content differs"
}

export interface VerifyCollection {
  readonly collection: string
  readonly inFiles: number
  /** Records of the collection the folded state holds (earlier imports' included). */
  readonly inState: number
  /** Rows of the collection in imported_records. */
  readonly inProjections: number
  /** Records found with the same checksum in the state and in every projection that shows them. */
  readonly matched: number
  readonly different: number
}

export interface VerifyReport {
  readonly ok: boolean
  /** The version of the state compared: the last import event's. */
  readonly stateVersion: number
  readonly collections: ReadonlyArray<VerifyCollection>
  readonly differences: ReadonlyArray<VerifyDifference>
  readonly differenceCount: number
}

export const recordSlot = (collection: string, key: string): string => `${collection}\u0000${key}`

const checksumOf = (r: LegacyRecord, value: unknown, hash: Hasher): string =>
  sameJson(value, r.record) ? r.checksum : recordChecksum(r.collection, r.key, value, hash)

const sameUser = (u: KnownUser | undefined, p: NonNullable<ReturnType<typeof legacyProfile>>): boolean =>
  u !== undefined && u.firstName === p.firstName && u.lastName === p.lastName && u.username === p.username && u.languageCode === p.languageCode

const CHAT_ID = /^-?\d{1,16}$/

/**
 * Compares. `entries` is the fold of the bot's stream up to `stateVersion`, its last import event
 * (every entry present); `changedAfter` the session keys the bot changed after it (bot_sessions
 * shows what the bot made of those: not a difference).
 */
export const verifyImport = (
  records: ReadonlyArray<LegacyRecord>,
  entries: Entries,
  stateVersion: number,
  changedAfter: ReadonlySet<string>,
  projected: ProjectedImport,
  hash: Hasher,
  limit = 20
): VerifyReport => {
  const per = new Map<string, { inFiles: number; inState: number; inProjections: number; matched: number; different: number }>()
  const stats = (c: string) => {
    let s = per.get(c)
    if (!s) {
      s = { inFiles: 0, inState: 0, inProjections: 0, matched: 0, different: 0 }
      per.set(c, s)
    }
    return s
  }
  const differences: VerifyDifference[] = []
  let differenceCount = 0

  for (const r of records) {
    const s = stats(r.collection)
    s.inFiles++
    const found: VerifyDifference[] = []
    const differ = (place: VerifyPlace, problem: VerifyDifference["problem"]) => found.push({ collection: r.collection, key: r.key, source: r.source, place, problem })
    const compare = (place: VerifyPlace, present: boolean, value: unknown) => {
      if (!present) differ(place, "missing")
      else if (checksumOf(r, value, hash) !== r.checksum) differ(place, "content differs")
    }
    const slot = recordSlot(r.collection, r.key)
    if (r.collection === "sessions") {
      const target = legacySessionTarget(r.key)
      const value = entries.value(sessionKey(target.key))
      compare("state", value !== undefined && value !== null, value)
      if (target.userId !== undefined && !entries.value(userKey(target.userId))) differ("state", "missing")
      // a session the bot changed (or deleted) after the import is the bot's own doing
      if (!changedAfter.has(target.key)) {
        const row = projected.sessions.get(target.key)
        compare("bot_sessions", row !== undefined, row?.data)
      }
      if (target.userId !== undefined && !projected.users.has(target.userId)) differ("bot_users", "missing")
    } else {
      const entry = entries.value(legacyKey(r.collection, r.key)) as { readonly record: unknown } | null | undefined
      compare("state", entry !== undefined && entry !== null, entry?.record)
      const profile = legacyProfile(r.collection, r.record)
      if (profile) {
        if (!sameUser(entries.value(userKey(profile.userId)) as KnownUser | undefined, profile)) differ("state", entries.value(userKey(profile.userId)) ? "content differs" : "missing")
        if (!projected.users.has(profile.userId)) differ("bot_users", "missing")
      }
      if (r.collection === "chats" && CHAT_ID.test(r.key) && !projected.chats.has(Number(r.key))) differ("chats", "missing")
    }
    compare("imported_records", projected.records.has(slot), projected.records.get(slot))
    if (found.length === 0) s.matched++
    else {
      s.different++
      differenceCount += found.length
      for (const d of found) if (differences.length < limit) differences.push(d)
    }
  }

  // what the state and the tables hold per collection, earlier imports included
  for (const [key, value] of entries.values()) {
    if (!key.startsWith("l:") || value === null) continue
    const rest = key.slice(2)
    for (const c of per.keys()) if (rest.startsWith(`${c}:`)) stats(c).inState++
  }
  const sessions = per.get("sessions")
  if (sessions) {
    for (const r of records) if (r.collection === "sessions" && entries.value(sessionKey(legacySessionTarget(r.key).key))) sessions.inState++
  }
  for (const slot of projected.records.keys()) {
    const c = slot.slice(0, slot.indexOf("\u0000"))
    if (per.has(c)) stats(c).inProjections++
  }

  const collections = [...per.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([collection, c]) => ({ collection, ...c }))
  return { ok: differenceCount === 0, stateVersion, collections, differences, differenceCount }
}
