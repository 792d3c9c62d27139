import type { ActorHandle, ActorHost, Placement } from "./host.js"

export interface OwnerHostsOptions {
  /** Where bots of the fleet's own kind (and bots placed without an owner) run. */
  readonly shared: ActorHost
  /** Opens a host of its own for `key`: an owner id, or OVERFLOW for owners past the cap. */
  readonly open: (key: string) => ActorHost
  /** Most owners with a host of their own; the next ones share one OVERFLOW host. */
  readonly maxOwners: number
  /** A host with no actor for this long is closed (its thread given back); default 60 s. */
  readonly idleCloseMs?: number
  /** Told when an owner starts sharing the overflow host (the operator may raise the cap). */
  readonly onOverflow?: (ownerId: string) => void
}

/** The key of the one host shared by the owners past `maxOwners`. */
export const OVERFLOW = "(owners past OWNER_THREADS)"

interface Slot {
  readonly host: ActorHost
  readonly live: Set<ActorHandle>
  idle: ReturnType<typeof setTimeout> | null
}

/**
 * Keeps owners' code apart: a bot whose kind is an owner's module (anything but "builtin") runs
 * on a host of that owner's own, opened on demand (in a node: a one-thread pool); bots of the
 * built-in kind stay on the shared host. Owner code that kills its thread (process.exit, an
 * uncaught throw, its heap exhausted) then takes down that owner's bots only: every other owner's
 * bot, and every built-in one, keeps running without a restart.
 *
 * The cost is a thread (its own Redis connections and loaded modules) per owner with a running
 * bot of their own kind; `maxOwners` bounds it, and owners past it share one more host (they can
 * take each other down, never anyone else). A host whose last actor ended is closed after
 * `idleCloseMs`, so passivated or removed owners give their thread back.
 */
export const makeOwnerHosts = (o: OwnerHostsOptions): ActorHost => {
  const slots = new Map<string, Slot>()
  const overflowed = new Set<string>()
  const idleCloseMs = o.idleCloseMs ?? 60_000
  let closing = false

  const keyFor = (ownerId: string): string => {
    if (slots.has(ownerId)) return ownerId
    const owners = [...slots.keys()].filter((k) => k !== OVERFLOW).length
    if (owners < o.maxOwners) return ownerId
    // told once per owner, not at every start of one of its bots
    if (!overflowed.has(ownerId)) o.onOverflow?.(ownerId)
    overflowed.add(ownerId)
    return OVERFLOW
  }

  const slotFor = (key: string): Slot => {
    let slot = slots.get(key)
    if (!slot) {
      slot = { host: o.open(key), live: new Set(), idle: null }
      slots.set(key, slot)
    }
    if (slot.idle) {
      clearTimeout(slot.idle)
      slot.idle = null
    }
    return slot
  }

  const release = (key: string, slot: Slot, handle: ActorHandle) => {
    slot.live.delete(handle)
    if (slot.live.size > 0 || closing || slot.idle) return
    slot.idle = setTimeout(() => {
      slot.idle = null
      if (slot.live.size > 0 || slots.get(key) !== slot) return
      slots.delete(key)
      void slot.host.close().catch(() => undefined)
    }, idleCloseMs)
    slot.idle.unref()
  }

  return {
    start: (spec, placement?: Placement) => {
      if (closing || !placement || placement.kind === "builtin") return o.shared.start(spec, placement)
      const key = keyFor(placement.ownerId)
      const slot = slotFor(key)
      const handle = slot.host.start(spec, placement)
      slot.live.add(handle)
      const done = () => release(key, slot, handle)
      handle.done.then(done, done)
      return handle
    },
    close: async () => {
      closing = true
      for (const slot of slots.values()) if (slot.idle) clearTimeout(slot.idle)
      const all = [...slots.values()]
      slots.clear()
      await Promise.all([o.shared.close(), ...all.map((s) => s.host.close())])
    }
  }
}
