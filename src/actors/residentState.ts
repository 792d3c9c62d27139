import { Effect, Either } from "effect"
import type { EventLogService } from "../events/eventLog.js"
import type { DomainEvent } from "../events/schema/catalogue.js"
import { keysOfEvent, keysOfEvents } from "./decider/entries.js"
import type { Json } from "./decider/mergePatch.js"
import { SNAPSHOT_SCHEMA_VERSION, decodeCore, encodeCore } from "./decider/snapshot.js"
import { evolve, initialState } from "./decider/state.js"
import type { BotState } from "./decider/state.js"
import { ARCHIVE_PAGE, readArchivedRange } from "./eventArchive.js"
import type { EventArchiveService } from "./eventArchive.js"
import type { InboxService } from "./inbox.js"
import { SnapshotUnavailable } from "./snapshotStore.js"
import type { SnapshotStoreService } from "./snapshotStore.js"

const run = <A, E>(eff: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(eff)
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export interface ResidentDeps {
  readonly log: EventLogService
  readonly inbox: InboxService
  readonly snapshots: SnapshotStoreService
  readonly archive?: EventArchiveService
}

export interface ResidentOptions {
  readonly botId: string
  /** The lease fence: what the snapshot store orders writers by. */
  readonly fence: number
  /** A snapshot every this many events (default 100). */
  readonly snapshotEvery: number
  /** Entries kept resident (users, sessions); past it the least recently used unchanged ones are dropped. */
  readonly maxEntries: number
  readonly now: () => number
}

/** Events read from the log per round of a catch-up (their entries are loaded together). */
const CATCH_UP_PAGE = 1000

/**
 * One actor's committed state and what keeps its cost bounded: the bot-level state whole, the
 * keyed entries (users, sessions) that recent updates touched, loaded from the snapshot store on
 * demand and dropped again (least recently used first) past `maxEntries`; snapshots that write
 * the bot-level state and only the entries changed since the previous snapshot.
 *
 * Why a dropped entry can always be loaded back correctly: only unchanged entries are dropped
 * (changed ones wait for the next snapshot), so the store holds each dropped entry's current
 * value; an entry that was never resident was not touched since the snapshot the actor started
 * from (every fold loads the entries it touches first), so the store holds its current value too.
 */
export class ResidentState {
  state: BotState = initialState
  version = 0
  private snapshotVersion = 0
  /** Keys changed since the last snapshot written: kept resident until written. */
  private readonly dirty = new Set<string>()
  /** Resident keys, least recently used first (a Map keeps insertion order). */
  private readonly recency = new Map<string, true>()
  private snapshotRetryAt = 0
  private snapshotFailures = 0
  /** Why the last snapshot could not be written (the store was down); null once one was. */
  lastSnapshotError: string | null = null

  constructor(
    private readonly deps: ResidentDeps,
    private readonly o: ResidentOptions
  ) {}

  get botId() {
    return this.o.botId
  }

  /** Entries resident now (users, sessions, and keys known not to exist). */
  get residentEntries() {
    return this.state.entries.resident
  }

  /**
   * The state at the head of the stream: the newest snapshot's bot-level part (entries load on
   * demand), then the events after it. Without a usable snapshot, the fold starts at version 1,
   * and whatever the store held for the bot is dropped first, so no entry of an older fold is ever
   * mixed into this one.
   */
  async hydrate(): Promise<void> {
    const snap = await run(this.deps.snapshots.load(this.o.botId))
    const restored = snap ? decodeCore(snap.schemaVersion, snap.state) : null
    if (snap && restored) {
      this.state = restored
      this.version = snap.version
      this.snapshotVersion = snap.version
    } else {
      await run(this.deps.snapshots.reset(this.o.botId, this.o.fence))
      this.state = initialState
      this.version = 0
      this.snapshotVersion = 0
    }
    await this.catchUp()
  }

  /**
   * Folds the events after our version (others may have appended, e.g. a config change), a page
   * at a time: each page's entries are loaded first, and a snapshot falls due as in normal
   * running, so a long tail (a big import) is folded in bounded memory. When the log starts
   * above our version (trimmed below a snapshot we could not use), the versions in between come
   * from the archive first, all of them or HistoryMissing.
   */
  async catchUp(): Promise<void> {
    for (;;) {
      const events = await run(this.deps.log.readStream(this.o.botId, { from: this.version + 1, limit: CATCH_UP_PAGE }))
      // nothing read for a bot we know nothing of: a new bot, or a stream trimmed whole, which
      // only its version tells apart (above a snapshot, trims never leave the stream empty)
      const logFrom = events[0]?.version ?? (this.version === 0 ? (await run(this.deps.log.streamVersion(this.o.botId))) + 1 : 1)
      for (let from = this.version + 1; from < logFrom; from = this.version + 1) {
        const archived = await run(Effect.either(readArchivedRange(this.deps.archive, this.o.botId, from, Math.min(logFrom - 1, from + ARCHIVE_PAGE - 1))))
        // thrown as it is, not wrapped: the host and the supervisor report it by its name
        if (Either.isLeft(archived)) throw archived.left
        await this.foldCommitted(archived.right.map((e) => e.data), archived.right[archived.right.length - 1]!.version)
      }
      if (events.length > 0) await this.foldCommitted(events.map((e) => e.data), events[events.length - 1]!.version)
      if (events.length < CATCH_UP_PAGE) return
    }
  }

  /** Folds recorded events into the committed state (their entries loaded first), then snapshots and evicts as due. */
  private async foldCommitted(events: ReadonlyArray<DomainEvent>, version: number) {
    await this.ensureLoaded(keysOfEvents(events))
    let next = this.state
    for (const e of events) next = evolve(next, e)
    this.commit(events, next, version)
    await this.snapshotIfDue()
    this.evictIfNeeded()
  }

  /**
   * Makes `keys` resident: those not resident yet are read from the store (absent ones are
   * remembered as absent). Returns `provisional` (a state derived from the committed one in the
   * middle of a batch) with the same entries loaded. An unreachable store is retried a few times
   * (an actor waits out a short Postgres restart), then fails as SnapshotUnavailable (an outage
   * for the supervisor).
   */
  async ensureLoaded(keys: Iterable<string>, provisional?: BotState): Promise<BotState | undefined> {
    const missing: string[] = []
    for (const k of keys) {
      if (this.state.entries.isLoaded(k)) this.touch(k)
      else missing.push(k)
    }
    if (missing.length === 0) return provisional
    const rows = await this.loadWithRetry(missing)
    const loaded = new Map<string, Json | null>(missing.map((k) => [k, null]))
    for (const r of rows) {
      if (r.version > this.version) {
        // written by a node that lost the lease after we started from an older snapshot: the
        // store cannot be trusted for this bot now; start over from version 1
        await run(this.deps.snapshots.reset(this.o.botId, this.o.fence))
        throw new SnapshotUnavailable({
          operation: "loadEntries",
          cause: `entry ${r.key} was written at version ${r.version}, after this actor's ${this.version}; the bot's snapshots were reset and it rebuilds from its events`
        })
      }
      loaded.set(r.key, r.data)
    }
    this.state = { ...this.state, entries: this.state.entries.withLoaded(loaded) }
    for (const k of missing) this.touch(k)
    return provisional === undefined ? undefined : { ...provisional, entries: provisional.entries.withLoaded(loaded) }
  }

  private async loadWithRetry(keys: ReadonlyArray<string>) {
    for (let attempt = 0; ; attempt++) {
      const r = await run(Effect.either(this.deps.snapshots.loadEntries(this.o.botId, keys)))
      if (Either.isRight(r)) return r.right
      if (attempt >= 4) throw r.left
      await sleep(100 * 2 ** attempt)
    }
  }

  /**
   * Makes `next` (the state after `events` were appended at `version`) the committed state; the
   * entries the events changed are marked for the next snapshot.
   */
  commit(events: ReadonlyArray<DomainEvent>, next: BotState, version: number): void {
    const before = this.state.entries
    for (const e of events) {
      for (const k of keysOfEvent(e)) {
        if (next.entries.value(k) !== before.value(k)) this.dirty.add(k)
        this.touch(k)
      }
    }
    this.state = next
    this.version = version
  }

  private touch(key: string) {
    this.recency.delete(key)
    this.recency.set(key, true)
  }

  /**
   * Drops the least recently used unchanged entries past `maxEntries` (down to 90% of it, so it
   * does not run after every update).
   */
  evictIfNeeded(): void {
    const resident = this.state.entries.resident
    if (resident <= this.o.maxEntries) return
    const target = Math.floor(this.o.maxEntries * 0.9)
    const victims: string[] = []
    for (const k of this.recency.keys()) {
      if (resident - victims.length <= target) break
      if (!this.dirty.has(k)) victims.push(k)
    }
    for (const k of victims) this.recency.delete(k)
    this.state = { ...this.state, entries: this.state.entries.evict(victims) }
  }

  /** Whether a snapshot is due: every `snapshotEvery` events, or sooner when many entries wait to be written. */
  private due(): boolean {
    const behind = this.version - this.snapshotVersion
    return behind > 0 && (behind >= this.o.snapshotEvery || this.dirty.size > this.o.maxEntries / 2)
  }

  async snapshotIfDue(): Promise<void> {
    if (this.due() && this.o.now() >= this.snapshotRetryAt) await this.snapshot()
  }

  /**
   * Writes the bot-level state and the entries changed since the last snapshot, then trims the
   * inbox up to the cursor. A store that cannot be reached is not fatal: the changed entries stay
   * resident and the write is tried again later (with a growing pause). Only when they pile up
   * past four times `maxEntries` does the actor fail (an outage), rather than grow without bound.
   */
  async snapshot(): Promise<void> {
    if (this.version === this.snapshotVersion) return
    const version = this.version
    const changed: Array<readonly [string, Json | null]> = [...this.dirty].map((k) => [k, this.state.entries.value(k) ?? null])
    const saved = await run(
      Effect.either(
        this.deps.snapshots.save(
          this.o.botId,
          { version, schemaVersion: SNAPSHOT_SCHEMA_VERSION, fence: this.o.fence, state: encodeCore(this.state) },
          changed
        )
      )
    )
    if (Either.isLeft(saved)) {
      this.snapshotFailures++
      this.lastSnapshotError = saved.left.message
      this.snapshotRetryAt = this.o.now() + Math.min(30_000, 500 * 2 ** Math.min(this.snapshotFailures, 6))
      if (this.dirty.size > this.o.maxEntries * 4) throw saved.left
      return
    }
    this.snapshotFailures = 0
    this.lastSnapshotError = null
    for (const [k] of changed) this.dirty.delete(k)
    this.snapshotVersion = version
    if (this.state.inboxCursor !== null) await run(this.deps.inbox.trim(this.o.botId, this.state.inboxCursor))
  }
}
