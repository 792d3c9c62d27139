import { Schema } from "effect"

/*
 * Measurements taken on whatever thread the work runs on: actors' appends and inbox dead letters
 * (worker threads in production, the main thread in embedded mode), the Bot API sender's calls,
 * 429s and waits, store errors. On the main thread the metrics registry installs itself as the
 * sink and takes each measurement as it happens. A worker thread has no registry: its
 * measurements gather here until the thread's next heartbeat carries them to the main thread
 * (`takeThreadStats` in the worker, `absorbThreadStats` in the pool host), which feeds them to
 * the same sink. Everything gathered is bounded, whoever drains it and however rarely.
 */

/** How one append to the event log ended. `conflict`: another writer appended first (expected version). */
export type AppendOutcome = "ok" | "conflict" | "stale_fence" | "invalid" | "unavailable" | "error"

/** Why a Bot API call waited: the client-side limits, a 429's retry_after, a retry after a 5xx/network failure. */
export type WaitReason = "limit" | "retry_after" | "backoff"

/** Where a dead letter went: a bot's inbox (its handler failed on the update) or a partition log's (a consumer refused the entry). */
export type DeadLetterSource = "inbox" | "log"

export type StoreName = "redis" | "postgres" | "pglite"

/** Where measurements go on the main thread (the metrics registry). */
export interface ThreadStatsSink {
  /** One append's latency (all outcomes). */
  readonly appendLatency: (seconds: number) => void
  readonly appends: (outcome: AppendOutcome, count: number) => void
  readonly call: (method: string, result: string, count: number) => void
  readonly rateLimited: (count: number) => void
  readonly waited: (reason: WaitReason, seconds: number) => void
  readonly deadLettered: (source: DeadLetterSource, count: number) => void
  readonly storeError: (store: StoreName, operation: string, count: number) => void
  /** Append latency samples a thread could not keep (more than MAX_SAMPLES between two heartbeats). */
  readonly dropped: (count: number) => void
}

const Counts = Schema.Record({ key: Schema.String, value: Schema.Number })

/** What a worker thread measured since its last heartbeat: plain data, cloned to the main thread. */
export const ThreadStats = Schema.Struct({
  /** One latency sample (seconds) per append, all outcomes. */
  appendSeconds: Schema.Array(Schema.Number),
  /** Appends by outcome. */
  appends: Counts,
  /** Bot API calls by `<method>/<result>`. */
  calls: Counts,
  rateLimited: Schema.Number,
  /** Seconds waited by reason. */
  waits: Counts,
  /** Dead letters by source. */
  deadLetters: Counts,
  /** Store errors by `<store>/<operation>`. */
  storeErrors: Counts,
  dropped: Schema.Number
})
export type ThreadStats = typeof ThreadStats.Type

/** Latency samples kept between two heartbeats (500 ms): 20,000 appends/s per thread, beyond any measured rate. */
export const MAX_SAMPLES = 10_000
/** Distinct keys kept per map between two heartbeats; more are counted under `other`. */
const MAX_KEYS = 200

/** Bot API method names become a label: anything that does not look like one is `other`. */
export const methodLabel = (method: string): string => (/^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(method) ? method : "other")

const RESULT_CODES = new Set([400, 401, 403, 404, 409, 429])

/** A refused call's result label: the error codes ops act on by name, the rest by class. */
export const refusedResult = (errorCode: number): string =>
  RESULT_CODES.has(errorCode) ? String(errorCode) : errorCode >= 500 ? "5xx" : errorCode >= 400 ? "4xx" : "error"

interface Pending {
  appendSeconds: number[]
  appends: Record<string, number>
  calls: Record<string, number>
  rateLimited: number
  waits: Record<string, number>
  deadLetters: Record<string, number>
  storeErrors: Record<string, number>
  dropped: number
  empty: boolean
}

const fresh = (): Pending => ({
  appendSeconds: [],
  appends: {},
  calls: {},
  rateLimited: 0,
  waits: {},
  deadLetters: {},
  storeErrors: {},
  dropped: 0,
  empty: true
})

let sink: ThreadStatsSink | null = null
let pending = fresh()

const add = (map: Record<string, number>, key: string, n: number) => {
  const k = key in map || Object.keys(map).length < MAX_KEYS ? key : "other"
  map[k] = (map[k] ?? 0) + n
  pending.empty = false
}

/** Splits `<a>/<b>` keys (the second part never holds a `/`). */
const split = (key: string): [string, string] => {
  const i = key.lastIndexOf("/")
  return i < 0 ? [key, "other"] : [key.slice(0, i), key.slice(i + 1)]
}

const replay = (s: ThreadStats, to: ThreadStatsSink) => {
  for (const v of s.appendSeconds) to.appendLatency(v)
  if (s.dropped > 0) to.dropped(s.dropped)
  for (const [k, n] of Object.entries(s.appends)) to.appends(k as AppendOutcome, n)
  for (const [k, n] of Object.entries(s.calls)) {
    const [method, result] = split(k)
    to.call(method, result, n)
  }
  if (s.rateLimited > 0) to.rateLimited(s.rateLimited)
  for (const [k, n] of Object.entries(s.waits)) to.waited(k as WaitReason, n)
  for (const [k, n] of Object.entries(s.deadLetters)) to.deadLettered(k as DeadLetterSource, n)
  for (const [k, n] of Object.entries(s.storeErrors)) {
    const [store, operation] = split(k)
    to.storeError(store as StoreName, operation, n)
  }
}

/**
 * Installs the main thread's sink (the metrics registry) and hands it what was gathered before.
 * Worker threads never install one.
 */
export const setThreadStatsSink = (s: ThreadStatsSink | null): void => {
  sink = s
  if (s && !pending.empty) {
    const gathered = takeThreadStats()
    if (gathered) replay(gathered, s)
  }
}

/** One append to the event log took `seconds` and ended with `outcome`. */
export const recordAppend = (seconds: number, outcome: AppendOutcome): void => {
  if (sink) {
    sink.appendLatency(seconds)
    return sink.appends(outcome, 1)
  }
  add(pending.appends, outcome, 1)
  keepSample(seconds)
}

const keepSample = (seconds: number) => {
  if (pending.appendSeconds.length < MAX_SAMPLES) pending.appendSeconds.push(seconds)
  else pending.dropped++
  pending.empty = false
}

/** One Bot API call ended with `result` (`ok`, `unknown`, `not_sent`, or a refusal's code: see refusedResult). */
export const recordCall = (method: string, result: string): void => {
  const m = methodLabel(method)
  if (sink) return sink.call(m, result, 1)
  add(pending.calls, `${m}/${result}`, 1)
}

/** Telegram answered 429 Too Many Requests. */
export const recordRateLimited = (): void => {
  if (sink) return sink.rateLimited(1)
  pending.rateLimited++
  pending.empty = false
}

/** A call waited `ms` before being sent (again). */
export const recordWait = (reason: WaitReason, ms: number): void => {
  if (ms <= 0) return
  if (sink) return sink.waited(reason, ms / 1000)
  add(pending.waits, reason, ms / 1000)
}

export const recordDeadLetter = (source: DeadLetterSource): void => {
  if (sink) return sink.deadLettered(source, 1)
  add(pending.deadLetters, source, 1)
}

/** A store client failed to reach its server (connection refused, reset, timed out, unavailable). */
export const recordStoreError = (store: StoreName, operation: string): void => {
  if (sink) return sink.storeError(store, operation, 1)
  add(pending.storeErrors, `${store}/${operation.replace(/\//g, "_")}`, 1)
}

/** What this thread measured since the last call (null: nothing), for its heartbeat. */
export const takeThreadStats = (): ThreadStats | null => {
  if (pending.empty) return null
  const { empty: _, ...taken } = pending
  pending = fresh()
  return taken
}

/** A worker thread's measurements, on the main thread: to the sink, or gathered until there is one. */
export const absorbThreadStats = (s: ThreadStats): void => {
  if (sink) return replay(s, sink)
  for (const v of s.appendSeconds) keepSample(v)
  for (const [k, n] of Object.entries(s.appends)) add(pending.appends, k, n)
  for (const [k, n] of Object.entries(s.calls)) add(pending.calls, k, n)
  for (const [k, n] of Object.entries(s.waits)) add(pending.waits, k, n)
  for (const [k, n] of Object.entries(s.deadLetters)) add(pending.deadLetters, k, n)
  for (const [k, n] of Object.entries(s.storeErrors)) add(pending.storeErrors, k, n)
  pending.dropped += s.dropped
  pending.rateLimited += s.rateLimited
  if (s.dropped > 0 || s.rateLimited > 0) pending.empty = false
}
