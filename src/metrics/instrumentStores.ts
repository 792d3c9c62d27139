import { performance } from "node:perf_hooks"
import { Effect } from "effect"
import type { InboxService } from "../actors/inbox.js"
import type { SqlClient, SqlTx } from "../db/sql.js"
import type { EventLogService } from "../events/eventLog.js"
import { recordAppend, recordDeadLetter, recordStoreError } from "./threadStats.js"
import type { AppendOutcome, DeadLetterSource, StoreName } from "./threadStats.js"

/*
 * The stores as /metrics sees them: each port wrapped so that what it does is measured on the
 * thread that does it (threadStats.ts), without the callers knowing. The wrappers change no
 * result and no error; they only look.
 */

/** An Effect-returning port method failed because its store was unreachable (…Unavailable). */
const isOutage = (e: unknown) => typeof (e as { _tag?: unknown } | null)?._tag === "string" && /Unavailable$/.test((e as { _tag: string })._tag)

type Method = (...args: never[]) => unknown

/**
 * Every Effect-returning method of a port, counting store errors by method name; `around` may
 * replace some methods: each is given the method counting store errors, and the bare one (to
 * count them itself, with one combinator less on a hot path).
 */
const wrapPort = <S extends object>(port: S, store: StoreName, around: Partial<Record<keyof S, (counting: Method, bare: Method) => unknown>> = {}): S => {
  const wrapped: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(port)) {
    if (typeof value !== "function") {
      wrapped[name] = value
      continue
    }
    const bare: Method = (...args) => (value as Method).apply(port, args)
    const counting: Method = (...args) => {
      const r: unknown = bare(...args)
      return Effect.isEffect(r) ? r.pipe(Effect.tapError((e) => Effect.sync(() => (isOutage(e) ? recordStoreError(store, name) : undefined)))) : r
    }
    const replace = around[name as keyof S]
    wrapped[name] = replace ? replace(counting, bare) : counting
  }
  return wrapped as S
}

const appendOutcome = (e: { readonly _tag: string }): AppendOutcome => {
  switch (e._tag) {
    case "WrongExpectedVersion":
      return "conflict"
    case "StaleFence":
      return "stale_fence"
    case "InvalidEvent":
      return "invalid"
    case "LogUnavailable":
      return "unavailable"
    default:
      return "error"
  }
}

/** The log with each append timed (latency and outcome) and its dead letters and store errors counted. */
export const instrumentLog = (log: EventLogService, store: StoreName): EventLogService =>
  wrapPort(log, store, {
    // one combinator on the hottest path: side effects in mapBoth, no nested Effects (an
    // interrupted append is not measured)
    append: (_counting, bare) => (req: Parameters<EventLogService["append"]>[0]) =>
      Effect.suspend(() => {
        const t0 = performance.now()
        return (bare as EventLogService["append"])(req).pipe(
          Effect.mapBoth({
            onSuccess: (r) => {
              recordAppend((performance.now() - t0) / 1000, "ok")
              return r
            },
            onFailure: (e) => {
              recordAppend((performance.now() - t0) / 1000, appendOutcome(e))
              if (e._tag === "LogUnavailable") recordStoreError(store, "append")
              return e
            }
          })
        )
      }),
    deadLetter: (counting) => countDeadLetters(counting as EventLogService["deadLetter"], "log")
  })

/** The inbox with its dead letters and store errors counted. */
export const instrumentInbox = (inbox: InboxService, store: StoreName): InboxService =>
  wrapPort(inbox, store, { deadLetter: (counting) => countDeadLetters(counting as InboxService["deadLetter"], "inbox") })

const countDeadLetters = <A extends ReadonlyArray<unknown>, E>(original: (...args: A) => Effect.Effect<void, E>, source: DeadLetterSource) =>
  (...args: A) => original(...args).pipe(Effect.tap(() => Effect.sync(() => recordDeadLetter(source))))

const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"])

/**
 * The database could not be reached or went away: a connection error (SQLSTATE class 08), the
 * server shutting down or out of resources (57P, 53), a socket error, a closed connection.
 * Not a refused statement (a constraint, a syntax error): those are the caller's.
 */
export const isConnectionError = (e: unknown): boolean => {
  const code = typeof e === "object" && e !== null && "code" in e ? String((e as { code: unknown }).code) : ""
  if (/^(08|57P|53)/.test(code) || NETWORK_CODES.has(code)) return true
  const message = e instanceof Error ? e.message : ""
  return /connection terminated|connection (is )?closed|Client has encountered a connection error|timeout exceeded when trying to connect/i.test(message)
}

/** The SQL client with the calls that could not reach the database counted. */
export const instrumentSql = (sql: SqlClient, store: StoreName): SqlClient => {
  const counted = <A>(operation: string, p: () => Promise<A>): Promise<A> =>
    p().catch((e: unknown) => {
      if (isConnectionError(e)) recordStoreError(store, operation)
      throw e
    })
  return {
    dialect: sql.dialect,
    query: <R extends Record<string, unknown>>(text: string, params?: ReadonlyArray<unknown>) => counted("query", () => sql.query<R>(text, params)),
    transaction: <A>(fn: (tx: SqlTx) => Promise<A>) => counted("transaction", () => sql.transaction(fn)),
    batch: (statements) => counted("batch", () => sql.batch(statements)),
    exec: (script) => counted("exec", () => sql.exec(script)),
    close: () => sql.close()
  }
}
