import { Context } from "effect"

/** One parameterised SQL statement. */
export interface Statement {
  readonly text: string
  readonly params?: ReadonlyArray<unknown>
  /**
   * Prepares it under this name on each connection (`batch` on a Postgres server): the server
   * parses and plans it once per connection, not on every run. For statements run often with a
   * fixed text; one name, one text.
   */
  readonly name?: string
}

export interface QueryResult<R extends Record<string, unknown> = Record<string, unknown>> {
  readonly rows: R[]
  readonly rowCount: number
}

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
  ): Promise<QueryResult<R>>
  /** Runs `fn` in one transaction on one connection; rolls back when it throws. */
  transaction<A>(fn: (tx: SqlTx) => Promise<A>): Promise<A>
  /**
   * Runs `statements` in order in one transaction on one connection, and returns each one's
   * result. Unlike `transaction`, nothing waits between statements: on a Postgres server they go
   * out together, pipelined (BEGIN, the statements and COMMIT in one round trip). A statement
   * that fails rolls the transaction back and the batch rejects with that statement's error (the
   * ones after it ran in an aborted transaction and changed nothing). For short reads whose
   * statements do not depend on each other's results in JavaScript.
   */
  batch(statements: ReadonlyArray<Statement>): Promise<ReadonlyArray<QueryResult>>
  /** Runs a script of several statements (migrations); no parameters. */
  exec(script: string): Promise<void>
  close(): Promise<void>
}

export type SqlTx = Pick<SqlClient, "query" | "exec" | "dialect">

export class Sql extends Context.Tag("botfleet/Sql")<Sql, SqlClient>() {}
