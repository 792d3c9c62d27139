import { Context, Data, Effect } from "effect"
import type { Json } from "./decider/mergePatch.js"

/**
 * The bot-level part of a bot's state at a stream version, in the layout of `schemaVersion`
 * (see decider/snapshot.ts), written under the lease `fence`.
 */
export interface Snapshot {
  readonly version: number
  readonly schemaVersion: number
  readonly state: unknown
  /** The lease fence of the writer (0 for snapshots written before fences were recorded). */
  readonly fence?: number
}

/** A keyed entry as stored: its value at the stream `version` it was written at. */
export interface StoredEntry {
  readonly key: string
  readonly version: number
  readonly data: Json
}

export class SnapshotUnavailable extends Data.TaggedError("SnapshotUnavailable")<{ readonly operation: string; readonly cause: unknown }> {
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `snapshot store unavailable during ${this.operation}: ${cause}`
  }
}

/**
 * Where snapshots live: a bot's bot-level state and its keyed entries (users, sessions). Both are
 * caches of the fold of the bot's events: losing them, or finding them of another schema
 * version, costs a longer rehydration and never changes the state.
 *
 * Guarantees:
 * - `save` writes the bot-level part and the given entries in ONE transaction (a reader never
 *   sees entries of a snapshot without its bot-level part), so the store always holds, for every
 *   key, its value as of some version at or below the newest bot-level snapshot, and no event
 *   between that version and the snapshot touched it;
 * - a write replaces what is stored only from a newer lease (higher fence), or from the same lease
 *   at the same or a newer version: a node that lost the bot can never overwrite its successor;
 * - the work of `save` is proportional to the entries given (those changed since the last
 *   snapshot), and `loadEntries` to the keys asked for: never to how many entries the bot has.
 */
export interface SnapshotStoreService {
  readonly load: (botId: string) => Effect.Effect<Snapshot | null, SnapshotUnavailable>
  /** The version of the bot's newest snapshot, 0 without one, without loading its state (the hot-log trimmer's bound). */
  readonly version: (botId: string) => Effect.Effect<number, SnapshotUnavailable>
  /** The stored entries among `keys` (keys with no entry are left out). */
  readonly loadEntries: (botId: string, keys: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<StoredEntry>, SnapshotUnavailable>
  /** Writes the snapshot and the entries that changed since the last one (a null value deletes the entry). */
  readonly save: (
    botId: string,
    snapshot: Snapshot & { readonly fence: number },
    entries: ReadonlyArray<readonly [string, Json | null]>
  ) => Effect.Effect<void, SnapshotUnavailable>
  /**
   * Forgets the bot's snapshot and entries, written under fences up to `fence`: before an actor
   * rebuilds the state from version 1 (no usable snapshot), so no entry of another history is
   * ever read back into it.
   */
  readonly reset: (botId: string, fence: number) => Effect.Effect<void, SnapshotUnavailable>
  readonly close: Effect.Effect<void>
}

export class SnapshotStore extends Context.Tag("botfleet/SnapshotStore")<SnapshotStore, SnapshotStoreService>() {}

/** Whether a write under (fence, version) may replace what was written under (storedFence, storedVersion). */
export const supersedes = (fence: number, version: number, storedFence: number, storedVersion: number): boolean =>
  fence > storedFence || (fence === storedFence && version >= storedVersion)

interface MemoryRow {
  readonly fence: number
  readonly version: number
  readonly json: string
}

/** Snapshots in Maps, for one process (unit tests, the in-process host over the memory log, threads without a database). */
export const makeMemorySnapshotStore = (): SnapshotStoreService & { readonly size: () => number; readonly entryCount: (botId: string) => number } => {
  const snaps = new Map<string, MemoryRow & { readonly schemaVersion: number }>()
  const entries = new Map<string, Map<string, MemoryRow>>()
  return {
    load: (botId) =>
      Effect.sync(() => {
        const s = snaps.get(botId)
        return s === undefined ? null : { version: s.version, schemaVersion: s.schemaVersion, fence: s.fence, state: JSON.parse(s.json) }
      }),
    loadEntries: (botId, keys) =>
      Effect.sync(() => {
        const rows = entries.get(botId)
        if (!rows) return []
        return keys.flatMap((key) => {
          const r = rows.get(key)
          return r ? [{ key, version: r.version, data: JSON.parse(r.json) as Json }] : []
        })
      }),
    save: (botId, snapshot, changed) =>
      Effect.sync(() => {
        const before = snaps.get(botId)
        if (before === undefined || supersedes(snapshot.fence, snapshot.version, before.fence, before.version)) {
          snaps.set(botId, { version: snapshot.version, schemaVersion: snapshot.schemaVersion, fence: snapshot.fence, json: JSON.stringify(snapshot.state) })
        }
        let rows = entries.get(botId)
        if (!rows) entries.set(botId, (rows = new Map()))
        for (const [key, value] of changed) {
          const r = rows.get(key)
          if (r !== undefined && !supersedes(snapshot.fence, snapshot.version, r.fence, r.version)) continue
          if (value === null) rows.delete(key)
          else rows.set(key, { fence: snapshot.fence, version: snapshot.version, json: JSON.stringify(value) })
        }
      }),
    reset: (botId, fence) =>
      Effect.sync(() => {
        const s = snaps.get(botId)
        if (s !== undefined && s.fence <= fence) snaps.delete(botId)
        const rows = entries.get(botId)
        if (rows) for (const [key, r] of rows) if (r.fence <= fence) rows.delete(key)
      }),
    version: (botId) => Effect.sync(() => snaps.get(botId)?.version ?? 0),
    close: Effect.void,
    size: () => snaps.size,
    entryCount: (botId) => entries.get(botId)?.size ?? 0
  }
}
