import { Effect, Either } from "effect"
import type { EventArchiveService } from "../actors/eventArchive.js"
import { ArchiveUnavailable } from "../actors/eventArchive.js"
import { LogUnavailable } from "../events/errors.js"
import type { AppendRequest, Delivery, EventLogService } from "../events/eventLog.js"
import type { DomainEvent } from "../events/schema/catalogue.js"
import type { RecordedEvent } from "../events/schema/envelope.js"
import type { SqlClient } from "../db/sql.js"
import { makeKeyCache } from "./keyCache.js"
import type { KeyCache, KeyCacheOptions } from "./keyCache.js"
import { mapPersonal, mapSealed, sealedUsers, subjectOf } from "./personalFields.pure.js"
import { ERASED } from "./sealedValue.pure.js"
import type { KeyState, UserKeys } from "./userKeys.js"
import { makeUserKeys, openWithKey, sealWithKey } from "./userKeys.js"

/*
 * Crypto-shredding at the event log's boundary (docs/privacy.md): a decorator of the log port
 * that seals each event's personal fields with its user's key on the way in, and opens them on
 * the way out, so no writer or reader of events (actors, projectors, inspect/tail/replay, the
 * REST API) changes. What the log, its archive and every backup of them hold is sealed; what a
 * reader sees is clear, or `[erased]` once the user's key is destroyed.
 *
 * The raw fields of a delivery (`Delivery.raw`) are left as stored: the projector archives them as
 * they are (the cold log stays sealed) and the audit chain hashes those sealed bytes, which an
 * erasure never changes, so `audit verify` still passes after one.
 */

/** Whether an event has a personal field in clear (one that sealing would change). */
const hasClear = (data: DomainEvent): boolean => {
  let clear = false
  mapPersonal(data, (s) => {
    clear = true
    return s
  })
  return clear
}

/** The event sealed with its subject's key state (looked up by the caller); `[erased]` fields for a forgotten user. */
const sealWith = (botId: string, subject: number, k: KeyState, data: DomainEvent): DomainEvent => {
  if (k._tag !== "Key") return mapPersonal(data, () => ERASED)
  // a text repeated within one event (a name in the update's `from` and its `chat`) is sealed
  // once: the cipher setup is most of the cost, and equal values inside one event say nothing new
  const memo = new Map<string, string>()
  return mapPersonal(data, (s) => {
    let sealed = memo.get(s)
    if (sealed === undefined) memo.set(s, (sealed = sealWithKey(k.key, botId, subject, s)))
    return sealed
  })
}

/**
 * The events of one bot with their personal fields sealed. The keys of all their subjects are
 * looked up together (`KeyCache.keyStates`: one round trip for those not cached), so an append
 * of many users' events — an import above all — costs one key lookup, not one per user. A
 * forgotten user is never given a key again: what they send after their erasure is recorded as
 * `[erased]` from the start.
 */
export const sealEvents = async (cache: KeyCache, botId: string, datas: ReadonlyArray<DomainEvent>): Promise<ReadonlyArray<DomainEvent>> => {
  // an event with nothing in clear (no text, or sealed already) costs no key lookup
  const subjects = datas.map((d) => {
    const subject = subjectOf(d)
    return subject !== null && hasClear(d) ? subject : null
  })
  const users = subjects.filter((u): u is number => u !== null)
  if (users.length === 0) return datas
  const keys = await cache.keyStates(botId, users, true)
  return datas.map((d, i) => {
    const subject = subjects[i]
    return subject === null || subject === undefined ? d : sealWith(botId, subject, keys.get(subject)!, d)
  })
}

/** One event sealed (see sealEvents). */
export const sealEvent = async (cache: KeyCache, botId: string, data: DomainEvent): Promise<DomainEvent> => (await sealEvents(cache, botId, [data]))[0]!

/** A payload with every sealed value opened with the given keys (`[erased]` for a missing key, or a value that does not open). */
const openWith = <A>(keys: ReadonlyMap<number, KeyState>, botId: string, data: A): A => {
  const memo = new Map<string, string>()
  return mapSealed(data, (u, s) => {
    const known = memo.get(s)
    if (known !== undefined) return known
    const k = keys.get(u)
    let open: string
    try {
      open = openWithKey(k?._tag === "Key" ? k.key : null, botId, s)
    } catch {
      // a value that does not open with its user's key (tampered, or moved between bots) reads as erased, not as a crash of every reader
      open = ERASED
    }
    memo.set(s, open)
    return open
  })
}

/** The payload with every sealed value opened (or `[erased]`); the same object when it holds none. */
export const openData = async <A>(cache: KeyCache, botId: string, data: A): Promise<A> => {
  const users = sealedUsers(data)
  if (users.size === 0) return data
  return openWith(await cache.keyStates(botId, users, false), botId, data)
}

/** Events (of any bots) opened, the keys of each bot's users looked up once for the whole page. */
const openEvents = async (cache: KeyCache, events: ReadonlyArray<RecordedEvent>): Promise<ReadonlyArray<RecordedEvent>> => {
  const usersByBot = new Map<string, Set<number>>()
  const sealedIn = events.map((e) => {
    const users = sealedUsers(e.data)
    if (users.size > 0) {
      let set = usersByBot.get(e.botId)
      if (set === undefined) usersByBot.set(e.botId, (set = new Set()))
      for (const u of users) set.add(u)
    }
    return users.size > 0
  })
  if (usersByBot.size === 0) return events
  const keysByBot = new Map<string, Map<number, KeyState>>()
  for (const [botId, users] of usersByBot) keysByBot.set(botId, await cache.keyStates(botId, users, false))
  return events.map((e, i) => (sealedIn[i] ? { ...e, data: openWith(keysByBot.get(e.botId)!, e.botId, e.data) } : e))
}

const openDeliveries = async (cache: KeyCache, ds: ReadonlyArray<Delivery>): Promise<ReadonlyArray<Delivery>> => {
  const events = ds.flatMap((d) => (Either.isRight(d.event) ? [d.event.right] : []))
  const opened = await openEvents(cache, events)
  if (opened === events) return ds
  let i = 0
  return ds.map((d) => (Either.isRight(d.event) ? { ...d, event: Either.right(opened[i++]!) } : d))
}

const keyStoreFailed = (operation: string) => (cause: unknown) => new LogUnavailable({ operation: `${operation} (user keys)`, cause })

const sealRequest = async (cache: KeyCache, req: AppendRequest): Promise<AppendRequest> => {
  const at = req.events.flatMap((e, i) => (e && typeof e === "object" && e.data ? [i] : []))
  if (at.length === 0) return req
  const sealed = await sealEvents(cache, req.botId, at.map((i) => req.events[i]!.data))
  const events = [...req.events]
  at.forEach((i, n) => {
    if (sealed[n] !== events[i]!.data) events[i] = { ...events[i]!, data: sealed[n]! }
  })
  return { ...req, events }
}

const UNSEALED = Symbol("botfleet.unsealedLog")

/**
 * The log under the sealing decorator (the log itself when it has none): for the writers that
 * must store events exactly as they were stored before, a restore of a backup above all: an event
 * written in clear before sealing existed is restored in clear, so the restored archive and the
 * audit chain's event hashes are the backed-up ones.
 */
export const unsealedLog = (log: EventLogService): EventLogService => (log as EventLogService & { [UNSEALED]?: EventLogService })[UNSEALED] ?? log

/** The log with personal fields sealed on append and opened on read (see the top of this file). */
export const withSealing = (log: EventLogService, cache: KeyCache): EventLogService => {
  const openAll = (events: ReadonlyArray<RecordedEvent>, op: string): Effect.Effect<ReadonlyArray<RecordedEvent>, LogUnavailable> =>
    Effect.tryPromise({ try: () => openEvents(cache, events), catch: keyStoreFailed(op) })
  const openPage = (ds: ReadonlyArray<Delivery>, op: string) => Effect.tryPromise({ try: () => openDeliveries(cache, ds), catch: keyStoreFailed(op) })
  const sealing: EventLogService & { [UNSEALED]: EventLogService } = {
    ...log,
    [UNSEALED]: log,
    append: (req) =>
      Effect.tryPromise({ try: () => sealRequest(cache, req), catch: keyStoreFailed("append") }).pipe(Effect.flatMap((sealed) => log.append(sealed))),
    appendMany: (reqs) =>
      Effect.tryPromise({ try: () => Promise.all(reqs.map((r) => sealRequest(cache, r))), catch: keyStoreFailed("appendMany") }).pipe(
        Effect.flatMap((sealed) => log.appendMany(sealed))
      ),
    readStream: (botId, options) => log.readStream(botId, options).pipe(Effect.flatMap((events) => openAll(events, "readStream"))),
    readPartition: (partition, options) => log.readPartition(partition, options).pipe(Effect.flatMap((ds) => openPage(ds, "readPartition"))),
    readGroup: (args) => log.readGroup(args).pipe(Effect.flatMap((ds) => openPage(ds, "readGroup"))),
    reclaim: (args) =>
      log.reclaim(args).pipe(
        Effect.flatMap((r) => openPage(r.deliveries, "reclaim").pipe(Effect.map((deliveries) => ({ ...r, deliveries }))))
      )
  }
  return sealing
}

/** The events archive read with sealed values opened (actors hydrate from it what the hot log trimmed). */
export const withOpenedArchive = (archive: EventArchiveService, cache: KeyCache): EventArchiveService => ({
  readStream: (botId, from, to) =>
    archive.readStream(botId, from, to).pipe(
      Effect.flatMap((events) =>
        Effect.tryPromise({
          try: () => openEvents(cache, events),
          catch: (cause) => new ArchiveUnavailable({ operation: "readStream (user keys)", cause })
        })
      )
    )
})

/** A process's key store and its cache, over the database holding `user_keys`. */
export const openUserKeys = (sql: SqlClient, fleetKey: Uint8Array, o: KeyCacheOptions = {}): { readonly keys: UserKeys; readonly cache: KeyCache } => {
  const keys = makeUserKeys(sql, fleetKey)
  return { keys, cache: makeKeyCache(keys, o) }
}
