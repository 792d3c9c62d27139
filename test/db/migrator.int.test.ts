import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { migrate } from "../../src/db/migrator.js"
import { makePgliteSql } from "../../src/db/pgliteSql.js"
import { makePgSql } from "../../src/db/pgSql.js"
import type { SqlClient } from "../../src/db/sql.js"
import { createTestDatabase } from "../support/db.js"

/** A fresh migrations folder holding `files`. */
const folder = async (files: Record<string, string>): Promise<string> => {
  const dir = await mkdtemp(join(tmpdir(), "bf-migrations-"))
  for (const [name, script] of Object.entries(files)) await writeFile(join(dir, name), script)
  return dir
}

const dirs: string[] = []
const newFolder = async (files: Record<string, string>) => {
  const dir = await folder(files)
  dirs.push(dir)
  return dir
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })))
})

const suite = (name: string, make: () => Promise<{ sql: SqlClient; cleanup: () => Promise<void> }>) =>
  describe(`migrate on ${name}`, () => {
    let sql: SqlClient
    let cleanup: () => Promise<void>
    beforeAll(async () => {
      ;({ sql, cleanup } = await make())
    })
    afterAll(async () => cleanup())
    // each test starts from an empty database
    beforeEach(async () => sql.exec("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))

    it("applies the files in number order, each once, and records them with checksums", async () => {
      const dir = await newFolder({
        "0002_add_b.sql": "ALTER TABLE m1 ADD COLUMN b int;",
        "0001_create.sql": "CREATE TABLE m1 (a int);\nINSERT INTO m1 (a) VALUES (1);"
      })
      expect((await migrate(sql, dir)).map((m) => m.file)).toEqual(["0001_create.sql", "0002_add_b.sql"])
      expect(await migrate(sql, dir)).toEqual([])
      const { rows } = await sql.query<{ version: number; name: string; checksum: string }>(
        "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
      )
      expect(rows.map((r) => [r.version, r.name])).toEqual([[1, "create"], [2, "add_b"]])
      expect(rows.every((r) => /^[0-9a-f]{64}$/.test(r.checksum))).toBe(true)
      expect((await sql.query("SELECT a, b FROM m1")).rows).toEqual([{ a: 1, b: null }])
    })

    it("refuses an applied migration whose file was edited, naming it, and applies nothing new", async () => {
      await migrate(sql, await newFolder({ "0001_create.sql": "CREATE TABLE m1 (a int);\nINSERT INTO m1 (a) VALUES (1);" }))
      const dir = await newFolder({
        "0001_create.sql": "CREATE TABLE m1 (a int);\nINSERT INTO m1 (a) VALUES (2);",
        "0002_add_b.sql": "ALTER TABLE m1 ADD COLUMN b int;",
        "0003_more.sql": "CREATE TABLE m3 (x int);"
      })
      const err = await migrate(sql, dir).then(() => null, (e: unknown) => e)
      expect(err).toMatchObject({ _tag: "MigrationChanged", file: "0001_create.sql" })
      expect((err as Error).message).toContain("0001_create.sql")
      expect((await sql.query("SELECT to_regclass('m3') AS t")).rows[0]).toEqual({ t: null })
    })

    it("rolls back a failing migration entirely and keeps the ones before it", async () => {
      const dir = await newFolder({
        "0001_create.sql": "CREATE TABLE f1 (a int);",
        "0002_broken.sql": "CREATE TABLE f2 (a int);\nINSERT INTO no_such_table VALUES (1);"
      })
      const err = await migrate(sql, dir).then(() => null, (e: unknown) => e)
      expect(err).toMatchObject({ _tag: "MigrationFailed", file: "0002_broken.sql" })
      const { rows } = await sql.query("SELECT to_regclass('f1')::text AS f1, to_regclass('f2')::text AS f2")
      expect(rows[0]).toEqual({ f1: "f1", f2: null })
    })

    it("refuses a misnamed .sql file instead of skipping it", async () => {
      const dir = await newFolder({ "0001_ok.sql": "SELECT 1;", "2_bad name.sql": "SELECT 1;" })
      await expect(migrate(sql, dir)).rejects.toMatchObject({ _tag: "MigrationFileInvalid", file: "2_bad name.sql" })
    })
  })

suite("a Postgres server", async () => {
  const db = await createTestDatabase("migrator")
  const sql = makePgSql(db.url)
  return { sql, cleanup: async () => { await sql.close(); await db.drop() } }
})

suite("PGlite in memory", async () => {
  const sql = await makePgliteSql()
  return { sql, cleanup: () => sql.close() }
})

describe("migrate with concurrent runners on a Postgres server", () => {
  it("serialises them: every migration is applied exactly once, by one runner", async () => {
    const db = await createTestDatabase("migrator_concurrent")
    const clients = Array.from({ length: 4 }, () => makePgSql(db.url, { max: 2 }))
    try {
      // CREATE TABLE without IF NOT EXISTS: a second application would fail
      const files: Record<string, string> = {}
      for (let i = 1; i <= 6; i++) files[`000${i}_t${i}.sql`] = `CREATE TABLE c${i} (a int); SELECT pg_sleep(0.02);`
      const dir = await newFolder(files)
      const results = await Promise.all(clients.map((c) => migrate(c, dir)))
      const all = results.flat().map((m) => m.version).sort((a, b) => a - b)
      expect(all).toEqual([1, 2, 3, 4, 5, 6])
      const { rows } = await clients[0]!.query("SELECT count(*)::int AS n FROM schema_migrations")
      expect(rows[0]).toEqual({ n: 6 })
    } finally {
      await Promise.all(clients.map((c) => c.close()))
      await db.drop()
    }
  })
})
