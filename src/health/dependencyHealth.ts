/*
 * The record of which store this process can reach: per connection group (a named client and
 * its duplicates, e.g. "log-blocking" or a pg pool), whether it is up, since when it is down and
 * the last error. Plain state and a transition callback, no I/O: the thread wiring
 * (processHealth.ts) logs the transitions and collects worker threads' records; the drivers
 * (redisHealth.ts, pgSql.ts) report into it.
 *
 * A group goes DOWN when its first connection fails and comes BACK when every connection that
 * failed is ready again, so an outage yields one line per group and state change, however many
 * connections or errors it has (a Redis restart once printed 1,879 raw ioredis lines).
 */

export type Dependency = "postgres" | "redis"

/** Which group a connection belongs to. `address` is host:port[/database], never credentials. */
export interface ClientKey {
  readonly dependency: Dependency
  /** What the connections are for: "log", "inbox-readers", "pool botfleet-node-1"... */
  readonly client: string
  readonly address: string
  /** 0: the main thread; else the worker thread's id. */
  readonly thread: number
}

export interface ClientHealth extends ClientKey {
  readonly up: boolean
  /** When the group went down (ISO-8601); null while up. */
  readonly downSince: string | null
  /** The last error seen (message only; kept after recovery for the record). */
  readonly lastError: string | null
  /** Errors seen since the group went down (logged once, counted here). */
  readonly errorsWhileDown: number
}

/** One store as a whole: down while any of its groups is. */
export interface DependencyStatus {
  readonly dependency: Dependency
  readonly up: boolean
  /** Since when some group has been down (the earliest), ISO-8601; null when up. */
  readonly downSince: string | null
  readonly lastError: string | null
  readonly clients: ReadonlyArray<ClientHealth>
}

/** A group changed state: what the log says. */
export type HealthTransition =
  | { readonly _tag: "Down"; readonly key: ClientKey; readonly at: string; readonly error: string }
  | { readonly _tag: "Back"; readonly key: ClientKey; readonly at: string; readonly downForMs: number; readonly errors: number }

interface Group {
  readonly key: ClientKey
  /** member id → up */
  readonly members: Map<string, boolean>
  downSinceMs: number | null
  lastError: string | null
  errorsWhileDown: number
}

export interface DependencyHealth {
  /** A connection of the group failed (connect refused, connection lost, command failed on the wire). */
  readonly down: (key: ClientKey, member: string, error: unknown) => void
  /** The connection works (ready, or a query succeeded). */
  readonly up: (key: ClientKey, member: string) => void
  /** The connection was closed on purpose: it no longer counts either way. */
  readonly gone: (key: ClientKey, member: string) => void
  /** Applies a transition another thread reported (its own record decided it). */
  readonly apply: (t: HealthTransition) => void
  /** A worker thread ended: its connections are gone, whatever they last said. */
  readonly forgetThread: (thread: number) => void
  readonly clients: () => ReadonlyArray<ClientHealth>
  /** Postgres and Redis as a whole (only the stores this process has connections to). */
  readonly dependencies: () => ReadonlyArray<DependencyStatus>
}

/** An error as one short line: its code when it has one, and its message. */
export const errorLine = (e: unknown): string => {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code
    const text = e.message || e.name
    return typeof code === "string" && !text.includes(code) ? `${code} ${text}` : text
  }
  return String(e)
}

const groupId = (k: ClientKey) => `${k.dependency}\u0000${k.client}\u0000${k.address}\u0000${k.thread}`

/**
 * A fresh record. `onTransition` is called synchronously on each state change of a group (never
 * for repeated errors of a group already down). `now` is the clock in ms.
 */
export const makeDependencyHealth = (o: { readonly now?: () => number; readonly onTransition?: (t: HealthTransition) => void } = {}): DependencyHealth => {
  const now = o.now ?? Date.now
  const groups = new Map<string, Group>()
  const iso = (ms: number) => new Date(ms).toISOString()

  const groupOf = (key: ClientKey): Group => {
    const id = groupId(key)
    let g = groups.get(id)
    if (!g) {
      g = { key, members: new Map(), downSinceMs: null, lastError: null, errorsWhileDown: 0 }
      groups.set(id, g)
    }
    return g
  }

  const backIfNoneDown = (g: Group) => {
    if (g.downSinceMs === null || [...g.members.values()].some((up) => !up)) return
    const at = now()
    const t: HealthTransition = { _tag: "Back", key: g.key, at: iso(at), downForMs: Math.max(0, at - g.downSinceMs), errors: g.errorsWhileDown }
    g.downSinceMs = null
    g.errorsWhileDown = 0
    o.onTransition?.(t)
  }

  return {
    down: (key, member, error) => {
      const g = groupOf(key)
      g.members.set(member, false)
      g.lastError = errorLine(error)
      if (g.downSinceMs !== null) {
        g.errorsWhileDown++
        return
      }
      const at = now()
      g.downSinceMs = at
      g.errorsWhileDown = 1
      o.onTransition?.({ _tag: "Down", key, at: iso(at), error: g.lastError })
    },
    up: (key, member) => {
      const g = groupOf(key)
      g.members.set(member, true)
      backIfNoneDown(g)
    },
    gone: (key, member) => {
      const id = groupId(key)
      const g = groups.get(id)
      if (!g) return
      g.members.delete(member)
      // the last connection of a group closed: nothing is left to be up or down
      if (g.members.size === 0) groups.delete(id)
      else backIfNoneDown(g)
    },
    apply: (t) => {
      const g = groupOf(t.key)
      const at = Date.parse(t.at)
      if (t._tag === "Down") {
        g.members.set("remote", false)
        g.downSinceMs = at
        g.lastError = t.error
        g.errorsWhileDown = 1
      } else {
        g.members.set("remote", true)
        g.downSinceMs = null
        g.errorsWhileDown = 0
      }
    },
    forgetThread: (thread) => {
      for (const [id, g] of groups) if (g.key.thread === thread) groups.delete(id)
    },
    clients: () =>
      [...groups.values()].map((g) => ({
        ...g.key,
        up: g.downSinceMs === null,
        downSince: g.downSinceMs === null ? null : iso(g.downSinceMs),
        lastError: g.lastError,
        errorsWhileDown: g.errorsWhileDown
      })),
    dependencies: () => {
      const all = [...groups.values()]
      const deps = [...new Set(all.map((g) => g.key.dependency))].sort()
      return deps.map((dependency) => {
        const mine = all.filter((g) => g.key.dependency === dependency)
        const down = mine.filter((g) => g.downSinceMs !== null)
        const earliest = down.reduce<number | null>((m, g) => (m === null || g.downSinceMs! < m ? g.downSinceMs : m), null)
        const lastError = down.map((g) => g.lastError).find((e) => e !== null) ?? null
        return {
          dependency,
          up: down.length === 0,
          downSince: earliest === null ? null : iso(earliest),
          lastError,
          clients: mine.map((g) => ({
            ...g.key,
            up: g.downSinceMs === null,
            downSince: g.downSinceMs === null ? null : iso(g.downSinceMs),
            lastError: g.lastError,
            errorsWhileDown: g.errorsWhileDown
          }))
        }
      })
    }
  }
}
