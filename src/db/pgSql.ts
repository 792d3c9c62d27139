import { Effect, Layer } from "effect"
import pg from "pg"
import type { SqlClient, SqlTx } from "./sql.js"
import { Sql } from "./sql.js"
import { TEXT_TYPE_OIDS } from "./typeParsing.js"

export interface PgSqlOptions {
  /** Pool size (default 10). */
  readonly max?: number
  /** Shown in pg_stat_activity. */
  readonly applicationName?: string
}

const textOids = new Set(TEXT_TYPE_OIDS)

/** pg-types defaults, except the lossy/zone-dependent ones, which stay text (see typeParsing.ts). */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    textOids.has(oid) && format !== "binary"
      ? (value: string) => value
      : pg.types.getTypeParser(oid, format as "text")) as pg.CustomTypesConfig["getTypeParser"]
}

/**
 * A SqlClient over a `pg` Pool. Every session runs in UTC. `transaction` holds one pooled
 * connection from BEGIN to COMMIT, so concurrent transactions run on distinct connections
 * (and really interleave on the server).
 */
export const makePgSql = (connectionString: string, options: PgSqlOptions = {}): SqlClient => {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 10,
    types,
    options: "-c TimeZone=UTC",
    application_name: options.applicationName ?? "botfleet"
  })
  // an idle client losing its connection must not crash the process; the next query reconnects
  pool.on("error", () => undefined)

  const asTx = (client: pg.PoolClient): SqlTx => ({
    dialect: "postgres",
    query: async <R extends Record<string, unknown>>(text: string, params?: ReadonlyArray<unknown>) => {
      const r = await client.query<R>(text, params as unknown[] | undefined)
      return { rows: r.rows, rowCount: r.rowCount ?? 0 }
    },
    exec: async (script: string) => {
      await client.query(script)
    }
  })

  return {
    dialect: "postgres",
    query: async <R extends Record<string, unknown>>(text: string, params?: ReadonlyArray<unknown>) => {
      const r = await pool.query<R>(text, params as unknown[] | undefined)
      return { rows: r.rows, rowCount: r.rowCount ?? 0 }
    },
    exec: async (script: string) => {
      // no parameters: the simple query protocol, which accepts several statements
      await pool.query(script)
    },
    transaction: async <A>(fn: (tx: SqlTx) => Promise<A>): Promise<A> => {
      const client = await pool.connect()
      let broken: Error | undefined
      try {
        await client.query("BEGIN")
        try {
          const a = await fn(asTx(client))
          await client.query("COMMIT")
          return a
        } catch (e) {
          try {
            await client.query("ROLLBACK")
          } catch (rollbackError) {
            // the connection is unusable: destroy it instead of returning it to the pool
            broken = rollbackError as Error
          }
          throw e
        }
      } finally {
        client.release(broken)
      }
    },
    close: () => pool.end()
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
