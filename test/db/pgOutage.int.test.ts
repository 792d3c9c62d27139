import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makePgSql } from "../../src/db/pgSql.js"
import type { SqlClient } from "../../src/db/sql.js"
import { SqlUnavailable } from "../../src/db/sqlErrors.js"
import { processHealth } from "../../src/health/processHealth.js"
import { captureDependencyLogs } from "../support/captureLogs.js"
import { startPrivatePostgres } from "../support/privateServers.js"
import type { PrivatePostgres } from "../support/privateServers.js"

/*
 * A pg pool when its server goes away: a terminated backend, a fast shutdown, a closed pool. Runs
 * on a private Postgres (its own cluster on a free port) because it stops the server.
 */

let server: PrivatePostgres
let sql: SqlClient
const logs = captureDependencyLogs()
const postgresDown = () => processHealth.dependencies().find((d) => d.dependency === "postgres")?.up === false

const until = async (cond: () => boolean | Promise<boolean>, ms = 30_000) => {
  const end = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not met in time")
    await new Promise((r) => setTimeout(r, 50))
  }
}

beforeAll(async () => {
  server = await startPrivatePostgres()
  sql = makePgSql(server.url, { max: 4, applicationName: "outage-test" })
  await sql.exec("CREATE TABLE t (id int PRIMARY KEY)")
}, 120_000)
afterAll(async () => {
  logs.stop()
  await sql.close()
  await server.remove()
})

describe("pg pool across server outages", () => {
  it("a transaction whose backend is terminated while it holds it fails as SqlUnavailable; the process lives and the pool goes on", async () => {
    const held = sql.transaction(async (tx) => {
      await tx.query("INSERT INTO t VALUES (1)")
      // 'idle in transaction' here, which is when the terminated backend used to kill the process
      await new Promise((r) => setTimeout(r, 1500))
      await tx.query("INSERT INTO t VALUES (2)")
    })
    await until(async () => (await server.terminateBackends("application_name = 'outage-test' AND state = 'idle in transaction'")) > 0)
    const err = await held.then(() => null, (e: unknown) => e)
    expect(err).toBeInstanceOf(SqlUnavailable)
    expect((err as SqlUnavailable).retryable).toBe(true)
    // nothing of the transaction was committed, and the next statements run on fresh connections
    expect((await sql.query("SELECT count(*)::int AS n FROM t")).rows).toEqual([{ n: 0 }])
    await sql.transaction((tx) => tx.query("INSERT INTO t VALUES (3)"))
    expect((await sql.query("SELECT id FROM t")).rows).toEqual([{ id: 3 }])
    // one backend ended is not Postgres down: a fresh connection answered, so nothing was logged
    await new Promise((r) => setTimeout(r, 300))
    expect(logs.lines.filter((l) => l["client"] === "pool outage-test")).toEqual([])
    expect(postgresDown()).toBe(false)
  }, 60_000)

  it("idle connections of a stopped server die quietly; statements fail fast as SqlUnavailable; the log says down once and back once", async () => {
    // fill the pool with idle connections
    await Promise.all(Array.from({ length: 4 }, () => sql.transaction((tx) => tx.query("SELECT pg_sleep(0.05)"))))
    const before = logs.lines.length
    await server.stop()
    const failures = await Promise.all(Array.from({ length: 10 }, () => sql.query("SELECT 1").then(() => null, (e: unknown) => e)))
    for (const f of failures) {
      expect(f).toBeInstanceOf(SqlUnavailable)
      expect(["unreachable", "shutting-down", "connection-lost"]).toContain((f as SqlUnavailable).reason)
    }
    await expect(sql.transaction((tx) => tx.query("SELECT 1"))).rejects.toBeInstanceOf(SqlUnavailable)
    expect(postgresDown()).toBe(true)
    await server.start()
    // no statement of ours needed: the pool's probe notices the server is back
    await until(() => !postgresDown())
    expect((await sql.query("SELECT count(*)::int AS n FROM t")).rows).toEqual([{ n: 1 }])
    const mine = logs.lines.slice(before).filter((l) => l["client"] === "pool outage-test")
    expect(mine.map((l) => l["message"])).toEqual(["postgres unreachable", "postgres back"])
    expect(mine[0]).toMatchObject({ level: "warn", dependency: "postgres", address: `127.0.0.1:${server.port}/postgres` })
    expect(mine[1]).toMatchObject({ level: "info" })
    expect(Number(mine[1]!["errorsWhileDown"])).toBeGreaterThanOrEqual(11)
  }, 90_000)

  it("a closed pool refuses statements with a typed, non-retryable error, and closing twice is harmless", async () => {
    const own = makePgSql(server.url, { max: 1 })
    await own.query("SELECT 1")
    await Promise.all([own.close(), own.close()])
    const err = await own.query("SELECT 1").then(() => null, (e: unknown) => e)
    expect(err).toBeInstanceOf(SqlUnavailable)
    expect(err).toMatchObject({ reason: "closed", retryable: false })
    await expect(own.transaction(async () => 1)).rejects.toMatchObject({ reason: "closed" })
  })
})
