import { randomBytes } from "node:crypto"
import pg from "pg"
import { inject } from "vitest"

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
