import { cp, mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { DEFAULT_MIGRATIONS_DIR } from "../../src/db/migrator.js"
import { makePgSql } from "../../src/db/pgSql.js"
import { makeReadiness } from "../../src/runtime/readiness.js"
import { useMigratedDatabase } from "../support/db.js"
import { freePort } from "../support/privateRedis.js"

/*
 * The checks behind GET /ready, against a real migrated Postgres and the shared Redis, and against
 * servers that are not there (a port nothing listens on).
 */

const sql = useMigratedDatabase("readiness")
let redis: Redis
let dir: string
beforeAll(async () => {
  redis = new Redis(inject("redisUrl"))
  dir = await mkdtemp(join(tmpdir(), "bf-readiness-"))
})
afterAll(async () => {
  redis.disconnect()
  await rm(dir, { recursive: true, force: true })
})

const failed = (r: { checks: ReadonlyArray<{ name: string; ok: boolean }> }) => r.checks.filter((c) => !c.ok).map((c) => c.name)

describe("readiness", () => {
  it("is ready once the node runs, with its stores answering and every migration applied; not while it starts or drains", async () => {
    const readiness = makeReadiness({ sql: sql(), redis })
    const starting = await readiness.check()
    expect(starting).toMatchObject({ ready: false, reason: "supervisor: the node is starting" })
    readiness.setPhase("running")
    const ready = await readiness.check()
    expect(ready.ready).toBe(true)
    expect(ready.reason).toBeNull()
    expect(ready.checks.map((c) => [c.name, c.ok])).toEqual([["database", true], ["redis", true], ["migrations", true], ["supervisor", true]])
    readiness.setPhase("draining")
    expect((await readiness.check()).reason).toBe("supervisor: the node is stopping: its bots are draining")
  })

  it("names the migrations this build has and the database lacks, or that changed since they were applied", async () => {
    const migrations = join(dir, "sql")
    await cp(DEFAULT_MIGRATIONS_DIR, migrations, { recursive: true })
    await writeFile(join(migrations, "0069_later_table.sql"), "CREATE TABLE later (id int);\n")
    await writeFile(join(migrations, "0001_event_log.sql"), "-- edited after it was applied\n", { flag: "a" })
    const readiness = makeReadiness({ sql: sql(), redis: null, migrationsDir: migrations })
    readiness.setPhase("running")
    const r = await readiness.check()
    expect(r.ready).toBe(false)
    expect(failed(r)).toEqual(["migrations"])
    expect(r.reason).toBe("migrations: 2 migrations missing: 0001_event_log.sql changed since it was applied, 0069_later_table.sql not applied")
  })

  it("reports a database and a Redis that do not answer, within its deadline, without the URL's password", async () => {
    const port = await freePort()
    const unreachable = makePgSql(`postgres://botfleet:hunter2@127.0.0.1:${port}/nothing`, { max: 1 })
    const noRedis = new Redis(`redis://127.0.0.1:${port}`, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    noRedis.on("error", () => undefined)
    try {
      const readiness = makeReadiness({ sql: unreachable, redis: noRedis, timeoutMs: 3_000 })
      readiness.setPhase("running")
      const started = Date.now()
      const r = await readiness.check()
      expect(Date.now() - started).toBeLessThan(10_000)
      expect(r.ready).toBe(false)
      expect(failed(r)).toEqual(["database", "redis", "migrations"])
      expect(r.checks.find((c) => c.name === "migrations")?.detail).toBe("not checked: the database does not answer")
      expect(r.reason).toMatch(/^database: postgres at 127\.0\.0\.1:\d+\/nothing unavailable \(unreachable\): connect ECONNREFUSED 127\.0\.0\.1:\d+; redis: .+; migrations: not checked/)
      expect(r.reason).not.toContain("hunter2")
    } finally {
      noRedis.disconnect()
      await unreachable.close()
    }
  })
})
