import { threadId } from "node:worker_threads"
import { Effect, Fiber, Layer } from "effect"
import pg from "pg"
import { outageBackoff } from "../health/backoff.js"
import type { ClientKey } from "../health/dependencyHealth.js"
import { currentThread, processHealth } from "../health/processHealth.js"
import type { QueryResult, SqlClient, SqlTx, Statement } from "./sql.js"
import { Sql } from "./sql.js"
import { SqlUnavailable, pgAddress, sqlState, unavailableReason } from "./sqlErrors.js"
import { TEXT_TYPE_OIDS } from "./typeParsing.js"

export interface PgSqlOptions {
  /** Pool size (default 10). */
  readonly max?: number
  /** Shown in pg_stat_activity, and names the pool in the dependency log. */
  readonly applicationName?: string
  /** Longest wait for a new connection before the statement fails as unreachable (default 10 s). */
  readonly connectTimeoutMs?: number
}

const textOids = new Set(TEXT_TYPE_OIDS)

/** pg-types defaults, except the lossy/zone-dependent ones, which stay text (see typeParsing.ts). */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    textOids.has(oid) && format !== "binary"
      ? (value: string) => value
      : pg.types.getTypeParser(oid, format as "text")) as pg.CustomTypesConfig["getTypeParser"]
}

let pools = 0

/**
 * Runs `issue` (queries on a pipelining client, written synchronously as they are issued) with the
 * client's socket corked, so they leave in one write. pg keeps its socket on `connection.stream`.
 */
export const corked = <A>(client: pg.ClientBase, issue: () => A): A => {
  const stream = (client as unknown as { connection?: { stream?: { cork?: () => void; uncork?: () => void } } }).connection?.stream
  stream?.cork?.()
  try {
    return issue()
  } finally {
    stream?.uncork?.()
  }
}

/**
 * A SqlClient over a `pg` Pool. Every session runs in UTC. `transaction` holds one pooled
 * connection from BEGIN to COMMIT, so concurrent transactions run on distinct connections
 * (and really interleave on the server).
 *
 * Outages: no connection of the pool can crash the process (idle ones are covered by the pool's
 * 'error' listener, the one held by a transaction by a listener of its own, which also keeps the
 * broken connection from going back to the pool). A statement that meets a restarted, stopped or
 * unreachable server, or a terminated backend, rejects with `SqlUnavailable` (retryable; the
 * transaction rolled back with its connection); any other error is pg's own, unchanged. The pool
 * reconnects by itself on the next statement. While the server is down the pool reports it in
 * the process's dependency record (logged once) and probes it with a backoff, so its return is
 * logged even when nothing else asks.
 */
export const makePgSql = (connectionString: string, options: PgSqlOptions = {}): SqlClient => {
  const applicationName = options.applicationName ?? "botfleet"
  const address = pgAddress(connectionString)
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 10,
    types,
    options: "-c TimeZone=UTC",
    application_name: applicationName,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    // a client sends a query without waiting for the answers to the ones before it (`batch`: a
    // whole transaction in one round trip); code that awaits each query behaves as without it
    pipeline: true,
    // a peer that vanished without closing (network cut) is found by TCP keepalive, not never
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000
  } as pg.PoolConfig) // pg 8.23's `pipeline` is not in @types/pg yet
  const key: ClientKey = { dependency: "postgres", client: `pool ${applicationName}`, address, thread: currentThread() }
  const member = `pg-${threadId}-${++pools}`
  let closed = false
  let ending: Promise<void> | null = null
  let probe: Fiber.RuntimeFiber<void> | null = null

  const markUp = () => processHealth.up(key, member)
  const ping = Effect.tryPromise(() => pool.query("SELECT 1"))
  /**
   * The server is unreachable: record it, and probe it with a backoff until it answers, then
   * record that (one probe per outage, so "back" is logged even when nothing else asks).
   */
  const markDown = (e: unknown) => {
    if (closed) return
    processHealth.down(key, member, e)
    if (probe !== null) return
    probe = Effect.runFork(
      ping.pipe(
        Effect.retry({ schedule: outageBackoff({ base: "250 millis", cap: "5 seconds" }), while: () => !closed }),
        Effect.tap(() => Effect.sync(markUp)),
        Effect.ignore,
        Effect.ensuring(Effect.sync(() => (probe = null)))
      )
    )
  }
  /**
   * One connection died (a terminated backend says 57P01, like a server shutting down): that is
   * not the server being down, so ask a fresh connection first and record an outage only if it
   * fails too. Nothing is logged for a backend an admin or a pooler ended.
   */
  let checking = false
  const suspect = () => {
    if (closed || checking || probe !== null) return
    checking = true
    Effect.runFork(
      ping.pipe(
        Effect.matchEffect({ onSuccess: () => Effect.sync(markUp), onFailure: (e) => Effect.sync(() => markDown(e.error)) }),
        Effect.ensuring(Effect.sync(() => (checking = false)))
      )
    )
  }

  /** pg's error, or SqlUnavailable when it says the server (not the statement) is the problem. */
  const classify = (e: unknown): unknown => {
    const reason = unavailableReason(e, closed)
    if (reason === null) {
      // the server answered (a constraint, a syntax error...): it is up
      if (typeof e === "object" && e !== null && (e as { _tag?: unknown })._tag !== "SqlUnavailable" && sqlState(e) !== undefined) markUp()
      return e
    }
    if (reason === "unreachable" || sqlState(e) === "57P02" || sqlState(e) === "57P03") markDown(e)
    else if (reason !== "closed") suspect()
    return new SqlUnavailable({ reason, address, code: sqlState(e), cause: e })
  }
  const guarded = async <A>(f: () => Promise<A>): Promise<A> => {
    if (closed) throw classify(new Error("Cannot use a pool after calling end on the pool"))
    try {
      const a = await f()
      markUp()
      return a
    } catch (e) {
      throw classify(e)
    }
  }

  // an idle client losing its connection must not crash the process; the next query reconnects
  pool.on("error", (e) => {
    if (unavailableReason(e) !== null) suspect()
  })

  /**
   * `pool.connect()` with `onError` on the client from the moment the pool hands it over. Not
   * after an `await`: the pool removes its own listener when it hands the client out, and the
   * server's FATAL for a terminated backend can arrive in the same socket read that freed the
   * client for us, before a promise continuation runs; with no listener there, the process died.
   */
  const checkOut = (onError: (e: Error) => void) =>
    new Promise<pg.PoolClient>((resolve, reject) => {
      pool.connect((e, client) => {
        if (e !== undefined && e !== null) return reject(e)
        client!.on("error", onError)
        resolve(client!)
      })
    })

  /**
   * One pooled connection held for `use`, with a listener for its errors all along: a checked-out
   * client has no listener of the pool's, and a backend terminated while we hold it ('idle in
   * transaction') would emit an unhandled 'error' and kill the process (57P01). A connection that
   * broke (its error, a statement that met a dead server, or `breaks`) is destroyed, never
   * returned to the pool.
   */
  const held = async <A>(use: (client: pg.PoolClient, breaks: (e: Error) => void) => Promise<A>): Promise<A> => {
    let broken: Error | undefined
    const onError = (e: Error) => {
      broken = e
      suspect()
    }
    const client = await guarded(() => checkOut(onError))
    try {
      return await use(client, (e) => (broken = e))
    } catch (e) {
      if (e instanceof SqlUnavailable) broken ??= e
      throw e
    } finally {
      client.removeListener("error", onError)
      client.release(broken)
    }
  }

  const asTx = (client: pg.PoolClient): SqlTx => ({
    dialect: "postgres",
    query: <R extends Record<string, unknown>>(text: string, params?: ReadonlyArray<unknown>) =>
      guarded(async () => {
        const r = await client.query<R>(text, params as unknown[] | undefined)
        return { rows: r.rows, rowCount: r.rowCount ?? 0 }
      }),
    exec: (script: string) =>
      guarded(async () => {
        await client.query(script)
      })
  })

  return {
    dialect: "postgres",
    query: <R extends Record<string, unknown>>(text: string, params?: ReadonlyArray<unknown>) =>
      guarded(async () => {
        const r = await pool.query<R>(text, params as unknown[] | undefined)
        return { rows: r.rows, rowCount: r.rowCount ?? 0 }
      }),
    exec: (script: string) =>
      // no parameters: the simple query protocol, which accepts several statements
      guarded(async () => {
        await pool.query(script)
      }),
    transaction: <A>(fn: (tx: SqlTx) => Promise<A>): Promise<A> =>
      held(async (client, breaks) => {
        await asTx(client).query("BEGIN")
        try {
          const a = await fn(asTx(client))
          await asTx(client).query("COMMIT")
          return a
        } catch (e) {
          try {
            await client.query("ROLLBACK")
          } catch (rollbackError) {
            // the connection is unusable: destroy it instead of returning it to the pool
            breaks(rollbackError as Error)
          }
          throw e
        }
      }),
    batch: (statements: ReadonlyArray<Statement>): Promise<ReadonlyArray<QueryResult>> =>
      held(async (client) => {
        // all sent at once (the client pipelines: each query is written as it is issued, and the
        // cork makes them one socket write, which is what a request costs most under load);
        // answers come back in order. A failed statement aborts the transaction: the ones after it
        // fail too and COMMIT answers ROLLBACK, so the connection goes back to the pool idle,
        // outside any transaction
        const sent = corked(client, () => [
          client.query("BEGIN"),
          ...statements.map((s) =>
            s.name === undefined ? client.query(s.text, s.params as unknown[] | undefined) : client.query({ name: s.name, text: s.text, values: s.params as unknown[] | undefined })
          ),
          client.query("COMMIT")
        ])
        const settled = await Promise.allSettled(sent)
        const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected")
        if (failed !== undefined) throw classify(failed.reason)
        markUp()
        return settled.slice(1, -1).map((r) => {
          const v = (r as PromiseFulfilledResult<pg.QueryResult>).value
          return { rows: v.rows, rowCount: v.rowCount ?? 0 }
        })
      }),
    close: () => {
      closed = true
      if (probe !== null) Effect.runFork(Fiber.interrupt(probe))
      processHealth.gone(key, member)
      // idempotent: every owner of the client may close it (pool.end twice would reject)
      ending ??= pool.end()
      return ending
    }
  }
}

/** The Sql service over a Postgres server; the pool is closed when the layer's scope ends. */
export const PgSqlLive = (connectionString: string, options?: PgSqlOptions): Layer.Layer<Sql> =>
  Layer.scoped(
    Sql,
    Effect.acquireRelease(
      Effect.sync(() => makePgSql(connectionString, options)),
      (sql) => Effect.promise(() => sql.close())
    )
  )
