import { Duration, Effect } from "effect"
import type { Supervisor } from "../actors/supervisor.js"
import type { SqlClient } from "../db/sql.js"
import type { EventLogService } from "../events/eventLog.js"
import { projectionLag } from "../projections/lag.js"
import { countSourceError, setActorGauges, setDeadLetterGauge, setProjectionGauges, setRedisMemory } from "./registry.js"

/*
 * Gauges read when /metrics is scraped: the supervisor's bots and their inboxes, each partition's
 * projection lag and dead letters (read from the log and the database, so every node reports the
 * same values, whichever node projects), and Redis memory. Each source has a deadline; one that
 * fails or is late is counted (botfleet_metrics_source_errors_total) and its gauges keep their
 * last values, so a scrape never hangs on a store that is down.
 */

/** The few Redis calls the gauges make (ioredis). */
export interface RedisInfo {
  readonly info: (section: string) => Promise<string>
}

export interface GaugeSources {
  /** The node's supervisor, once it runs (null while the node starts). */
  readonly supervisor: () => Supervisor | null
  readonly log: EventLogService
  readonly sql: SqlClient
  /** Production mode's Redis (null in embedded mode). */
  readonly redis: RedisInfo | null
}

export interface GaugeOptions {
  /** Scrapes closer together than this reuse the last reading (default 5 s): ten scrapers cost one reading. */
  readonly minIntervalMs?: number
  /** Deadline of each source (default 5 s). */
  readonly timeoutMs?: number
  /** Waiting log entries counted per partition at most (default 1,000). */
  readonly lagCap?: number
}

/** `name:value` lines of Redis INFO as numbers. */
export const parseRedisInfo = (text: string): ReadonlyMap<string, number> => {
  const out = new Map<string, number>()
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(":")
    if (i <= 0 || line.startsWith("#")) continue
    const n = Number(line.slice(i + 1).trim())
    if (Number.isFinite(n)) out.set(line.slice(0, i), n)
  }
  return out
}

const actorSource = (s: GaugeSources) =>
  Effect.gen(function* () {
    const supervisor = s.supervisor()
    if (!supervisor) return
    const statuses = yield* supervisor.statuses
    const states: Record<string, number> = {}
    let depth = 0
    let max = 0
    for (const st of statuses) {
      states[st.state] = (states[st.state] ?? 0) + 1
      if (st.inboxLag !== null) {
        depth += st.inboxLag
        max = Math.max(max, st.inboxLag)
      }
    }
    setActorGauges(states, depth, max)
  })

const projectionSource = (s: GaugeSources, cap: number) =>
  Effect.gen(function* () {
    const lag = yield* projectionLag({ log: s.log, sql: s.sql, cap })
    for (const l of lag) setProjectionGauges(l.partition, { waiting: l.waiting, lagSeconds: (l.oldestWaitingAgeMs ?? 0) / 1000, stalled: l.stalled })
  })

const deadLetterSource = (s: GaugeSources) =>
  Effect.forEach(
    Array.from({ length: s.log.partitions }, (_, p) => p),
    (p) => Effect.map(s.log.readDeadLetters(p), (dead) => setDeadLetterGauge(p, dead.length)),
    { discard: true }
  )

const redisSource = (redis: RedisInfo) =>
  Effect.tryPromise(() => redis.info("memory")).pipe(
    Effect.map((text) => {
      const info = parseRedisInfo(text)
      setRedisMemory(info.get("used_memory") ?? 0, info.get("maxmemory") ?? 0)
    })
  )

/**
 * What /metrics runs before rendering: reads every source (concurrently, each within its
 * deadline). Concurrent callers share one reading; a reading younger than `minIntervalMs` is
 * reused. Never fails.
 */
export const makeGaugeRefresh = (s: GaugeSources, o: GaugeOptions = {}): (() => Promise<void>) => {
  const timeout = Duration.millis(o.timeoutMs ?? 5_000)
  const minInterval = o.minIntervalMs ?? 5_000
  const guarded = <E>(name: string, eff: Effect.Effect<void, E>) =>
    eff.pipe(
      Effect.timeoutFail({ duration: timeout, onTimeout: () => new Error(`${name} took longer than ${Duration.toMillis(timeout)} ms`) }),
      Effect.catchAllCause(() => Effect.sync(() => countSourceError(name)))
    )
  const sources = [
    guarded("actors", actorSource(s)),
    guarded("projections", projectionSource(s, o.lagCap ?? 1_000)),
    guarded("dead_letters", deadLetterSource(s)),
    ...(s.redis ? [guarded("redis", redisSource(s.redis))] : [])
  ]
  const read = Effect.all(sources, { concurrency: "unbounded", discard: true })
  let inFlight: Promise<void> | null = null
  let readAt = -Infinity
  return () => {
    if (inFlight) return inFlight
    if (performance.now() - readAt < minInterval) return Promise.resolve()
    inFlight = Effect.runPromise(read).finally(() => {
      readAt = performance.now()
      inFlight = null
    })
    return inFlight
  }
}
