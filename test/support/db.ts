import { randomBytes } from "node:crypto"
import pg from "pg"
import { afterAll, beforeAll, inject } from "vitest"
import { migrate } from "../../src/db/migrator.js"
import { makePgSql } from "../../src/db/pgSql.js"
import type { SqlClient } from "../../src/db/sql.js"

/**
 * A fresh database for one suite, dropped afterwards: suites never see each other's data.
 * Returns its URL (same server as the run's DATABASE_URL).
 */
export const createTestDatabase = async (label: string): Promise<{ url: string; drop: () => Promise<void> }> => {
  const adminUrl = inject("databaseUrl")
  const name = `bf_test_${label.replace(/[^a-z0-9_]/gi, "_").toLowerCase()}_${randomBytes(4).toString("hex")}`
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: adminUrl })
      await c.connect()
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      } finally {
        await c.end()
      }
    }
  }
}

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
