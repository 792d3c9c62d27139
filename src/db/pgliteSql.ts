import { PGlite } from "@electric-sql/pglite"
import type { Results, Transaction } from "@electric-sql/pglite"
import { Effect, Layer } from "effect"
import type { SqlClient, SqlTx } from "./sql.js"
import { Sql } from "./sql.js"
import { discardClusterImage, emptyClusterImage } from "./pgliteTemplate.js"
import { pgliteParsers } from "./typeParsing.js"

/** Same meaning as pg's rowCount: rows returned by a query that returns rows, else rows affected. */
const rowCountOf = (r: Results<unknown>): number => (r.fields.length > 0 ? r.rows.length : (r.affectedRows ?? 0))

export interface PgliteSqlOptions {
  /**
   * Folder holding the database files; absent = in memory (gone on close), started from a cached
   * image of an empty cluster (pgliteTemplate.ts) rather than by running initdb.
   */
  readonly dataDir?: string
}

/** On disk: PGlite as is. In memory: started from the cached empty-cluster image (no initdb). */
const open = async (options: PgliteSqlOptions): Promise<PGlite> => {
  const parsers = pgliteParsers()
  if (options.dataDir !== undefined) return PGlite.create({ dataDir: options.dataDir, parsers })
  try {
    return await PGlite.create({ loadDataDir: await emptyClusterImage(), parsers })
  } catch {
    // a damaged image must not stop anything: drop it and start the slow way
    await discardClusterImage()
    return PGlite.create({ parsers })
  }
}

/**
 * A SqlClient over PGlite (embedded Postgres in WebAssembly), on disk or in memory. PGlite has a
 * single connection: statements and transactions run one at a time, in call order. So, inside
 * `transaction(fn)`, `fn` must use its `tx` argument only: a query on the client itself would wait
 * for the transaction that is waiting for it.
 */
export const makePgliteSql = async (options: PgliteSqlOptions = {}): Promise<SqlClient> => {
  const db = await open(options)
  await db.exec("SET TimeZone = 'UTC'")

  const asTx = (tx: Transaction): SqlTx => ({
    dialect: "pglite",
    query: async <R extends Record<string, unknown>>(text: string, params?: ReadonlyArray<unknown>) => {
      const r = await tx.query<R>(text, params as unknown[] | undefined)
      return { rows: r.rows, rowCount: rowCountOf(r) }
    },
    exec: async (script: string) => {
      await tx.exec(script)
    }
  })

  return {
    dialect: "pglite",
    query: async <R extends Record<string, unknown>>(text: string, params?: ReadonlyArray<unknown>) => {
      const r = await db.query<R>(text, params as unknown[] | undefined)
      return { rows: r.rows, rowCount: rowCountOf(r) }
    },
    exec: async (script: string) => {
      await db.exec(script)
    },
    transaction: <A>(fn: (tx: SqlTx) => Promise<A>): Promise<A> => db.transaction((tx) => fn(asTx(tx))),
    close: () => db.close()
  }
}

/** The Sql service over PGlite; closed when the layer's scope ends. */
export const PgliteSqlLive = (options?: PgliteSqlOptions): Layer.Layer<Sql> =>
  Layer.scoped(
    Sql,
    Effect.acquireRelease(
      Effect.promise(() => makePgliteSql(options)),
      (sql) => Effect.promise(() => sql.close())
    )
  )
