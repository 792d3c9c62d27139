import { randomBytes } from "node:crypto"
import pg from "pg"

export interface ScratchDatabase {
  readonly url: string
  readonly drop: () => Promise<void>
}

const onAdmin = async (adminUrl: string, statement: string) => {
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  try {
    await admin.query(statement)
  } finally {
    await admin.end()
  }
}

/**
 * A new, empty database on the server of `adminUrl`, named after `prefix` plus random hex, and
 * how to drop it. For test suites (through createTestDatabase) and benchmarks alike.
 */
export const createScratchDatabase = async (adminUrl: string, prefix: string): Promise<ScratchDatabase> => {
  const name = `${prefix.replace(/[^a-z0-9_]/gi, "_").toLowerCase()}_${randomBytes(4).toString("hex")}`
  await onAdmin(adminUrl, `CREATE DATABASE ${name}`)
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return { url: url.toString(), drop: () => onAdmin(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) }
}
