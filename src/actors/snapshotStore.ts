import { Context, Data, Effect } from "effect"

/** A bot's state at a stream version, in the layout of `schemaVersion` (see decider/snapshot.ts). */
export interface Snapshot {
  readonly version: number
  readonly schemaVersion: number
  readonly state: unknown
}

export class SnapshotUnavailable extends Data.TaggedError("SnapshotUnavailable")<{ readonly operation: string; readonly cause: unknown }> {
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `snapshot store unavailable during ${this.operation}: ${cause}`
  }
}

/**
 * Where snapshots live. A snapshot is only a cache of the fold of the bot's events up to its
 * version: losing one, or finding one of another schema version, costs a longer rehydration and
 * never changes the state. `save` keeps the newest version (an older one never replaces it).
 */
export interface SnapshotStoreService {
  readonly load: (botId: string) => Effect.Effect<Snapshot | null, SnapshotUnavailable>
  readonly save: (botId: string, snapshot: Snapshot) => Effect.Effect<void, SnapshotUnavailable>
  /** The version of the bot's newest snapshot, 0 without one, without loading its state (the hot-log trimmer's bound). */
  readonly version: (botId: string) => Effect.Effect<number, SnapshotUnavailable>
  readonly close: Effect.Effect<void>
}

export class SnapshotStore extends Context.Tag("botfleet/SnapshotStore")<SnapshotStore, SnapshotStoreService>() {}

/** Snapshots in a Map, for one process (unit tests, the in-process host over the memory log). */
export const makeMemorySnapshotStore = (): SnapshotStoreService & { readonly size: () => number } => {
  const snaps = new Map<string, string>()
  return {
    load: (botId) => Effect.sync(() => {
      const s = snaps.get(botId)
      return s === undefined ? null : (JSON.parse(s) as Snapshot)
    }),
    save: (botId, snapshot) =>
      Effect.sync(() => {
        const before = snaps.get(botId)
        if (before === undefined || (JSON.parse(before) as Snapshot).version <= snapshot.version) snaps.set(botId, JSON.stringify(snapshot))
      }),
    version: (botId) => Effect.sync(() => {
      const s = snaps.get(botId)
      return s === undefined ? 0 : (JSON.parse(s) as Snapshot).version
    }),
    close: Effect.void,
    size: () => snaps.size
  }
}
