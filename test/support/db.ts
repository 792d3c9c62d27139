import { afterAll, beforeAll, inject } from "vitest"
import { migrate } from "../../src/db/migrator.js"
import { makePgSql } from "../../src/db/pgSql.js"
import type { SqlClient } from "../../src/db/sql.js"
import { createScratchDatabase } from "./databases.js"
import type { ScratchDatabase } from "./databases.js"

/**
 * A fresh database for one suite, dropped afterwards: suites never see each other's data.
 * Returns its URL (same server as the run's DATABASE_URL).
 */
export const createTestDatabase = (label: string): Promise<ScratchDatabase> =>
  createScratchDatabase(inject("databaseUrl"), `bf_test_${label}`)

/**
 * A fresh database with every migration applied, for the calling suite: registers its own
 * beforeAll/afterAll (created before the suite's tests, dropped after). Returns a getter for the
 * suite's `pg` client, valid once the suite's beforeAll hooks ran.
 */
export const useMigratedDatabase = (label: string, max = 4): (() => SqlClient) => {
  let sql: SqlClient | undefined
  let drop: (() => Promise<void>) | undefined
  beforeAll(async () => {
    const db = await createTestDatabase(label)
    drop = db.drop
    sql = makePgSql(db.url, { max })
    await migrate(sql)
  })
  afterAll(async () => {
    await sql?.close()
    await drop?.()
  })
  return () => {
    if (!sql) throw new Error("the database is made in beforeAll: use it inside hooks and tests")
    return sql
  }
}
