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

/** Keys of the users an event needs, looked up once each (through the cache: rarely a round trip). */
const keysFor = async (cache: KeyCache, botId: string, users: Iterable<number>, create: boolean): Promise<Map<number, KeyState>> => {
  const out = new Map<number, KeyState>()
  for (const u of users) if (!out.has(u)) out.set(u, await cache.keyState(botId, u, create))
  return out
}

/**
 * The event with its personal fields sealed. A forgotten user is never given a key again: what
 * they send after their erasure is recorded as `[erased]` from the start.
 */
export const sealEvent = async (cache: KeyCache, botId: string, data: DomainEvent): Promise<DomainEvent> => {
  const subject = subjectOf(data)
  if (subject === null) return data
  let clear = false
  mapPersonal(data, (s) => {
    clear = true
    return s
  })
  // an event with nothing in clear (no text, or sealed already) costs no key lookup
  if (!clear) return data
  const k = await cache.keyState(botId, subject, true)
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

/** The payload with every sealed value opened (or `[erased]`); the same object when it holds none. */
export const openData = async <A>(cache: KeyCache, botId: string, data: A): Promise<A> => {
  const users = sealedUsers(data)
  if (users.size === 0) return data
  const keys = await keysFor(cache, botId, users, false)
  const memo = new Map<string, string>()
  return mapSealed(data, (u, s) => {
    const known = memo.get(s)
    if (known !== undefined) return known
    const k = keys.get(u)!
    let open: string
    try {
      open = openWithKey(k._tag === "Key" ? k.key : null, botId, s)
    } catch {
      // a value that does not open with its user's key (tampered, or moved between bots) reads as erased, not as a crash of every reader
      open = ERASED
    }
    memo.set(s, open)
    return open
  })
}

const openEvent = async (cache: KeyCache, e: RecordedEvent): Promise<RecordedEvent> => {
  const data = await openData(cache, e.botId, e.data)
  return data === e.data ? e : { ...e, data }
}

const openDelivery = async (cache: KeyCache, d: Delivery): Promise<Delivery> => {
  if (Either.isLeft(d.event)) return d
  const e = await openEvent(cache, d.event.right)
  return e === d.event.right ? d : { ...d, event: Either.right(e) }
}

const keyStoreFailed = (operation: string) => (cause: unknown) => new LogUnavailable({ operation: `${operation} (user keys)`, cause })

const sealRequest = (cache: KeyCache, req: AppendRequest): Promise<AppendRequest> =>
  Promise.all(req.events.map(async (e) => (e && typeof e === "object" && e.data ? { ...e, data: await sealEvent(cache, req.botId, e.data) } : e))).then(
    (events) => ({ ...req, events })
  )

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
    Effect.tryPromise({ try: () => Promise.all(events.map((e) => openEvent(cache, e))), catch: keyStoreFailed(op) })
  const openDeliveries = (ds: ReadonlyArray<Delivery>, op: string) =>
    Effect.tryPromise({ try: () => Promise.all(ds.map((d) => openDelivery(cache, d))), catch: keyStoreFailed(op) })
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
    readPartition: (partition, options) => log.readPartition(partition, options).pipe(Effect.flatMap((ds) => openDeliveries(ds, "readPartition"))),
    readGroup: (args) => log.readGroup(args).pipe(Effect.flatMap((ds) => openDeliveries(ds, "readGroup"))),
    reclaim: (args) =>
      log.reclaim(args).pipe(
        Effect.flatMap((r) => openDeliveries(r.deliveries, "reclaim").pipe(Effect.map((deliveries) => ({ ...r, deliveries }))))
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
          try: () => Promise.all(events.map((e) => openEvent(cache, e))),
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
