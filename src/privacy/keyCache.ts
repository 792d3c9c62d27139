import { BroadcastChannel } from "node:worker_threads"
import type { KeyState, UserKeys } from "./userKeys.js"

/**
 * The keys of one process, cached so sealing and opening do not cost a Postgres round trip per
 * event. Bounded twice:
 * - in size: at most `max` users (least recently used go first), so memory does not grow with
 *   the users a fleet has met;
 * - in staleness: an entry is used for at most `ttlMs`. A forget is also announced (the node's
 *   control channel, then a BroadcastChannel to every thread of the process: `announceForget`),
 *   which drops the entry at once; the TTL is the backstop for an announcement that is lost, so a
 *   forgotten user's data stops opening everywhere within `ttlMs` at worst.
 * A user with no key yet is not cached (a writer elsewhere may make one any moment); a forgotten
 * user is (that never changes back).
 */
export interface KeyCache {
  readonly keyState: (botId: string, userId: number, create: boolean) => Promise<KeyState>
  /** The keys of many users of one bot: the cached ones, and the rest in one batch of the store (`UserKeys.keyStates`). */
  readonly keyStates: (botId: string, userIds: Iterable<number>, create: boolean) => Promise<Map<number, KeyState>>
  /** Drops one user's key from this cache (a forget seen here). */
  readonly invalidate: (botId: string, userId: number) => void
  readonly size: () => number
  readonly ttlMs: number
  /** Stops listening to forget announcements. */
  readonly close: () => void
}

/** The BroadcastChannel of a process's key caches (every thread listens on it). */
export const KEY_CHANNEL = "botfleet:user-keys"

export interface KeyCacheOptions {
  readonly max?: number
  readonly ttlMs?: number
  /** Listen for forget announcements on KEY_CHANNEL (default true). */
  readonly listen?: boolean
  readonly now?: () => number
}

/** The default staleness bound, documented in docs/privacy.md ("within 5 s"). */
export const KEY_CACHE_TTL_MS = 5_000

interface Entry {
  readonly state: KeyState
  readonly at: number
}

const isForget = (m: unknown): m is { readonly _tag: "UserForgotten"; readonly botId: string; readonly userId: number } =>
  typeof m === "object" && m !== null && (m as { _tag?: unknown })._tag === "UserForgotten" &&
  typeof (m as { botId?: unknown }).botId === "string" && typeof (m as { userId?: unknown }).userId === "number"

export const makeKeyCache = (keys: UserKeys, o: KeyCacheOptions = {}): KeyCache => {
  const max = o.max ?? 10_000
  const ttlMs = o.ttlMs ?? KEY_CACHE_TTL_MS
  const now = o.now ?? Date.now
  const entries = new Map<string, Entry>()
  const id = (botId: string, userId: number) => `${botId}\u0000${userId}`
  const invalidate = (botId: string, userId: number) => {
    entries.delete(id(botId, userId))
  }
  let channel: BroadcastChannel | null = null
  if (o.listen !== false) {
    channel = new BroadcastChannel(KEY_CHANNEL)
    channel.unref()
    channel.onmessage = (e) => {
      const m = (e as { data?: unknown }).data
      if (isForget(m)) invalidate(m.botId, m.userId)
    }
  }
  const fresh = (k: string): KeyState | undefined => {
    const hit = entries.get(k)
    if (hit === undefined || now() - hit.at >= ttlMs) return undefined
    // most recently used moves to the end of the Map's order
    entries.delete(k)
    entries.set(k, hit)
    return hit.state
  }
  // least recently used first: one iterator for the whole eviction, since each fresh iterator
  // walks over the slots deleted before it (a batch of thousands would be quadratic)
  const evict = () => {
    if (entries.size <= max) return
    const oldest = entries.keys()
    while (entries.size > max) entries.delete(oldest.next().value!)
  }
  const remember = (k: string, state: KeyState) => {
    entries.delete(k)
    if (state._tag !== "None") entries.set(k, { state, at: now() })
  }
  return {
    ttlMs,
    size: () => entries.size,
    invalidate,
    close: () => channel?.close(),
    keyState: async (botId, userId, create) => {
      const k = id(botId, userId)
      const hit = fresh(k)
      if (hit !== undefined) return hit
      const state = await keys.keyState(botId, userId, create)
      remember(k, state)
      evict()
      return state
    },
    keyStates: async (botId, userIds, create) => {
      const out = new Map<number, KeyState>()
      const missing = new Set<number>()
      for (const u of userIds) {
        if (out.has(u) || missing.has(u)) continue
        const hit = fresh(id(botId, u))
        if (hit !== undefined) out.set(u, hit)
        else missing.add(u)
      }
      if (missing.size === 0) return out
      const [first] = missing
      // one user alone (a conversation's append): the single lookup, cheaper than unnest's statement
      const got = missing.size === 1 ? new Map([[first!, await keys.keyState(botId, first!, create)]]) : await keys.keyStates(botId, [...missing], create)
      for (const [u, state] of got) {
        remember(id(botId, u), state)
        out.set(u, state)
      }
      evict()
      return out
    }
  }
}

/** Tells every key cache of this process (every thread) that a user was forgotten. */
export const announceForget = (botId: string, userId: number): void => {
  const c = new BroadcastChannel(KEY_CHANNEL)
  c.postMessage({ _tag: "UserForgotten", botId, userId })
  c.close()
}
