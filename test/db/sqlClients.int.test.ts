import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makePgliteSql } from "../../src/db/pgliteSql.js"
import { makePgSql } from "../../src/db/pgSql.js"
import type { SqlClient } from "../../src/db/sql.js"
import { createTestDatabase } from "../support/db.js"

const suite = (name: string, make: () => Promise<{ sql: SqlClient; cleanup: () => Promise<void> }>) =>
  describe(`SqlClient on ${name}`, () => {
    let sql: SqlClient
    let cleanup: () => Promise<void>
    beforeAll(async () => {
      ;({ sql, cleanup } = await make())
      await sql.exec("CREATE TABLE t (id int PRIMARY KEY, big bigint, at timestamptz, doc jsonb, ok boolean)")
    })
    afterAll(async () => cleanup())

    it("returns values the same way on every adapter: bigint and time as text, int/bool/json parsed", async () => {
      await sql.query("INSERT INTO t VALUES ($1, $2, $3, $4, $5)", [1, "9007199254740993", "2026-01-02T03:04:05.678Z", { a: [1] }, true])
      const { rows, rowCount } = await sql.query("SELECT * FROM t WHERE id = 1")
      expect(rowCount).toBe(1)
      expect(rows[0]).toEqual({ id: 1, big: "9007199254740993", at: "2026-01-02 03:04:05.678+00", doc: { a: [1] }, ok: true })
    })

    it("reports affected rows for writes", async () => {
      const r = await sql.query("INSERT INTO t (id) SELECT g FROM generate_series(10, 14) g")
      expect(r.rowCount).toBe(5)
      expect((await sql.query("DELETE FROM t WHERE id >= 10")).rowCount).toBe(5)
    })

    it("commits a transaction and returns its result", async () => {
      const out = await sql.transaction(async (tx) => {
        await tx.query("INSERT INTO t (id) VALUES (2)")
        return (await tx.query<{ n: string }>("SELECT count(*) AS n FROM t")).rows[0]!.n
      })
      expect(out).toBe("2")
      expect((await sql.query("SELECT id FROM t WHERE id = 2")).rowCount).toBe(1)
    })

    it("rolls a transaction back when its function throws, leaving nothing", async () => {
      await expect(
        sql.transaction(async (tx) => {
          await tx.query("INSERT INTO t (id) VALUES (3)")
          await tx.exec("INSERT INTO t (id) VALUES (4); INSERT INTO t (id) VALUES (5)")
          throw new Error("boom")
        })
      ).rejects.toThrow("boom")
      expect((await sql.query("SELECT id FROM t WHERE id IN (3, 4, 5)")).rowCount).toBe(0)
      // the client is still usable afterwards
      expect((await sql.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }])
    })

    it("runs a batch in one transaction and returns each statement's result in order", async () => {
      const [inserted, counted, none] = await sql.batch([
        { text: "INSERT INTO t (id) VALUES ($1), ($2)", params: [20, 21] },
        { text: "SELECT count(*)::int AS n FROM t WHERE id >= $1", params: [20] },
        { text: "SELECT id FROM t WHERE id = -1" }
      ])
      expect(inserted!.rowCount).toBe(2)
      expect(counted!.rows).toEqual([{ n: 2 }])
      expect(none).toEqual({ rows: [], rowCount: 0 })
      // many batches at once on a few connections: each gets its own answers
      const many = await Promise.all(Array.from({ length: 40 }, (_, i) => sql.batch([{ text: "SELECT $1::int AS i", params: [i] }, { text: "SELECT $1::int * 2 AS j", params: [i] }])))
      expect(many.map(([a, b]) => [a!.rows[0]!["i"], b!.rows[0]!["j"]])).toEqual(Array.from({ length: 40 }, (_, i) => [i, 2 * i]))
    })

    it("rolls a whole batch back when one statement fails, rejecting with its error, and the client goes on", async () => {
      const failure = await sql
        .batch([
          { text: "INSERT INTO t (id) VALUES (30)" },
          { text: "INSERT INTO t (id) VALUES (1)" },
          { text: "INSERT INTO t (id) VALUES (31)" }
        ])
        .catch((e: unknown) => e)
      expect(failure).toMatchObject({ code: "23505" })
      expect((await sql.query("SELECT id FROM t WHERE id IN (30, 31)")).rowCount).toBe(0)
      // no transaction left open on the connection: a later write commits on its own
      await sql.batch([{ text: "INSERT INTO t (id) VALUES (32)" }])
      expect((await sql.query("SELECT id FROM t WHERE id = 32")).rowCount).toBe(1)
    })

    it("surfaces SQL errors with their SQLSTATE code", async () => {
      await expect(sql.query("INSERT INTO t (id) VALUES (1)")).rejects.toMatchObject({ code: "23505" })
    })
  })

suite("a Postgres server", async () => {
  const db = await createTestDatabase("sqlclient")
  const sql = makePgSql(db.url)
  return { sql, cleanup: async () => { await sql.close(); await db.drop() } }
})

suite("PGlite in memory", async () => {
  const sql = await makePgliteSql()
  return { sql, cleanup: () => sql.close() }
})

describe("SqlClient on PGlite on disk", () => {
  it("keeps committed data across a close and a reopen of the data folder", async () => {
    const { mkdtemp, rm } = await import("node:fs/promises")
    const { tmpdir } = await import("node:os")
    const { join } = await import("node:path")
    const dataDir = await mkdtemp(join(tmpdir(), "bf-pglite-"))
    try {
      const first = await makePgliteSql({ dataDir })
      await first.exec("CREATE TABLE kept (id int PRIMARY KEY)")
      await first.transaction((tx) => tx.query("INSERT INTO kept VALUES (1), (2)"))
      await first.close()
      const again = await makePgliteSql({ dataDir })
      try {
        expect((await again.query("SELECT id FROM kept ORDER BY id")).rows).toEqual([{ id: 1 }, { id: 2 }])
      } finally {
        await again.close()
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true })
    }
  })
})
