import { Context } from "effect"

/**
 * The smallest SQL surface botfleet needs, served by `pg` (a Postgres server) and by PGlite
 * (embedded). Plain promises: callers wrap them in Effect at their own boundary with typed errors.
 * bigint columns come back as strings from both: convert explicitly.
 */
export interface SqlClient {
  readonly dialect: "postgres" | "pglite"
  query<R extends Record<string, unknown> = Record<string, unknown>>(
    text: string,
    params?: ReadonlyArray<unknown>
  ): Promise<{ readonly rows: R[]; readonly rowCount: number }>
  /** Runs `fn` in one transaction on one connection; rolls back when it throws. */
  transaction<A>(fn: (tx: SqlTx) => Promise<A>): Promise<A>
  /** Runs a script of several statements (migrations); no parameters. */
  exec(script: string): Promise<void>
  close(): Promise<void>
}

export type SqlTx = Pick<SqlClient, "query" | "exec" | "dialect">

export class Sql extends Context.Tag("botfleet/Sql")<Sql, SqlClient>() {}
