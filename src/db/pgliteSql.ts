import { lockPgliteDir } from "./pgliteLock.js"
import type { DataDirInUse, DataDirLockFailed } from "./pgliteLock.js"
import { existsSync } from "node:fs"
import { join } from "node:path"
import type { PGlite, Results, Transaction } from "@electric-sql/pglite"
import { Effect, Layer } from "effect"
import type { QueryResult, SqlClient, SqlTx, Statement } from "./sql.js"
import { Sql } from "./sql.js"
import { discardClusterImage, emptyClusterImage } from "./pgliteTemplate.js"
import { pgliteParsers } from "./typeParsing.js"

/** Same meaning as pg's rowCount: rows returned by a query that returns rows, else rows affected. */
const rowCountOf = (r: Results<unknown>): number => (r.fields.length > 0 ? r.rows.length : (r.affectedRows ?? 0))

export interface PgliteSqlOptions {
  /**
   * Folder holding the database files (created on first use); absent = in memory (gone on close).
   * A new cluster starts from a cached image of an empty one (pgliteTemplate.ts), not initdb.
   */
  readonly dataDir?: string
}

/**
 * A new cluster (in memory, or a data folder with no cluster yet) starts from the cached
 * empty-cluster image instead of running initdb; an existing data folder opens as it is.
 */
const open = async (options: PgliteSqlOptions): Promise<PGlite> => {
  // loaded here, not with this module: production mode (Postgres + Redis) never opens PGlite, and
  // its modules cost a CLI start ~20 ms
  const { PGlite } = await import("@electric-sql/pglite")
  const parsers = pgliteParsers()
  const where = options.dataDir === undefined ? {} : { dataDir: options.dataDir }
  if (options.dataDir !== undefined && existsSync(join(options.dataDir, "PG_VERSION"))) return PGlite.create({ ...where, parsers })
  try {
    return await PGlite.create({ ...where, loadDataDir: await emptyClusterImage(), parsers })
  } catch {
    // a damaged image must not stop anything: drop it and start the slow way
    await discardClusterImage()
    return PGlite.create({ ...where, parsers })
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
    // one connection in the same process: nothing to pipeline, the statements run one by one
    batch: (statements: ReadonlyArray<Statement>): Promise<ReadonlyArray<QueryResult>> =>
      db.transaction(async (tx) => {
        const out: Array<QueryResult> = []
        for (const s of statements) {
          const r = await tx.query<Record<string, unknown>>(s.text, s.params as unknown[] | undefined)
          out.push({ rows: r.rows, rowCount: rowCountOf(r) })
        }
        return out
      }),
    close: () => db.close()
  }
}

/** The Sql service over PGlite; closed when the layer's scope ends. */
export const PgliteSqlLive = (options?: PgliteSqlOptions): Layer.Layer<Sql, DataDirInUse | DataDirLockFailed> =>
  Layer.scoped(
    Sql,
    Effect.zipRight(
      // one process per folder (pgliteLock.ts); an in-memory database needs no lock
      options?.dataDir !== undefined ? lockPgliteDir(options.dataDir) : Effect.void,
      Effect.acquireRelease(
        Effect.promise(() => makePgliteSql(options)),
        (sql) => Effect.promise(() => sql.close())
      )
    )
  )
