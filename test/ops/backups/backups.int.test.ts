import { randomBytes } from "node:crypto"
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { Registry } from "prom-client"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { loadConfig } from "../../../src/config.js"
import { migrate } from "../../../src/db/migrator.js"
import { makePgSql } from "../../../src/db/pgSql.js"
import type { SqlClient } from "../../../src/db/sql.js"
import type { EventLogService } from "../../../src/events/eventLog.js"
import { makeRedisEventLog } from "../../../src/events/redisEventLog.js"
import { folderTarget } from "../../../src/ops/backups/folderTarget.js"
import { readBackupHealth, registerBackupMetrics } from "../../../src/ops/backups/health.js"
import { takeBackup } from "../../../src/ops/backups/takeBackup.js"
import { makeProjector } from "../../../src/projections/projector.js"
import { jsonLoggerLayer } from "../../../src/logging.js"
import { captureCli } from "../../cli/support.js"
import { appendFacts, received, registered } from "../../projections/fixtures.js"
import { fleetEnv, startTestNode } from "../../runtime/support.js"
import type { TestNode } from "../../runtime/support.js"
import { createTestDatabase } from "../../support/db.js"
import { createTestPrefix } from "../../support/redis.js"

/*
 * Scheduled, verified backups and restore drills on real Redis and Postgres (production mode):
 * the schedule fires on one node of two (by lease) and retention deletes the oldest; a corrupted
 * backup fails its verification (after writing, and later); a drill restores the newest backup
 * into a scratch database + key prefix and reports a projection that differs from the live one.
 * Each failure is an alert: an error log line, a failed run in `status`, and the metrics.
 */

interface Fleet {
  env: Record<string, string>
  log: EventLogService
  sql: SqlClient
  dir: string
  cleanup: () => Promise<void>
}

const secretKey = randomBytes(32).toString("base64")

const makeFleet = async (label: string, extra: Record<string, string> = {}): Promise<Fleet> => {
  const db = await createTestDatabase(label)
  const redis = createTestPrefix(label)
  const dir = await mkdtemp(join(tmpdir(), `bf-${label}-`))
  const env = fleetEnv({ db, redis, secretKey, dataDir: dir }, { LOG_LEVEL: "info", BACKUP_TARGET: join(dir, "backups"), ...extra })
  const log = await Effect.runPromise(makeRedisEventLog({ url: redis.url, prefix: redis.prefix }))
  const sql = makePgSql(db.url)
  await migrate(sql)
  return {
    env,
    log,
    sql,
    dir,
    cleanup: async () => {
      await Effect.runPromise(log.close)
      await sql.close()
      await redis.cleanup()
      await db.drop()
      await rm(dir, { recursive: true, force: true })
    }
  }
}

const projectAll = async (f: Fleet) => {
  for (let p = 0; p < f.log.partitions; p++) {
    const projector = makeProjector({ log: f.log, sql: f.sql, partition: p, blockMs: 0 })
    for (;;) if ((await Effect.runPromise(projector.step)).caughtUp) break
  }
}

const seed = async (f: Fleet) => {
  for (const [i, bot] of ["alpha", "bravo", "charlie"].entries()) {
    await appendFacts(f.log, bot, [
      registered(`owner-${i % 2}`, bot),
      { _tag: "UserSeen", userId: 10 + i, firstName: "Ada", at: "2026-01-01T10:00:00.000Z" },
      received(100 + i, 10 + i, 1, "hello"),
      { _tag: "ReplySent", chatId: 100 + i, messageId: 2, text: "hi there", at: "2026-01-01T10:00:01.000Z" }
    ])
  }
  await projectAll(f)
}

/** The events file of a backup that holds `text`. */
const fileWith = async (dir: string, text: string) => {
  for (const file of (await readdir(dir)).filter((x) => x.startsWith("events-"))) if ((await readFile(join(dir, file), "utf8")).includes(text)) return file
  throw new Error(`no events file of ${dir} holds ${text}`)
}

const cli = (f: Fleet, ...argv: Array<string>) => captureCli(f.env, argv)
const errorLines = (err: string) => err.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l["level"] === "error")

const fleets: Array<Fleet> = []
const nodes: Array<TestNode> = []
afterAll(async () => {
  for (const n of nodes) await n.stop().catch(() => undefined)
  for (const f of fleets) await f.cleanup()
})

describe("scheduled backups", () => {
  it("one node of two takes them on the schedule, each verified; retention keeps the newest BACKUP_KEEP", async () => {
    const f = await makeFleet("bk_sched", { BACKUP_SCHEDULE: "*/2 * * * * *", BACKUP_KEEP: "2", BACKUP_DRILL_SCHEDULE: "off", LEASE_TTL_MS: "3000", LEASE_RENEW_MS: "1000", WORKER_THREADS: "0" })
    fleets.push(f)
    await seed(f)
    nodes.push(await startTestNode({ ...f.env, NODE_ID: "node-a" }), await startTestNode({ ...f.env, NODE_ID: "node-b" }))
    const runs = async () => (await f.sql.query<{ backup: string; ok: boolean; node_id: string }>("SELECT backup, ok, node_id FROM backup_runs WHERE kind = 'backup' ORDER BY id")).rows
    await expect.poll(async () => (await runs()).length, { timeout: 90_000, interval: 500 }).toBeGreaterThanOrEqual(4)
    for (const n of nodes.splice(0)) await n.stop()
    const taken = await runs()
    expect(taken.every((r) => r.ok)).toBe(true)
    // one node holds the backup lease: every backup is its
    expect(new Set(taken.map((r) => r.node_id)).size).toBe(1)
    // a backup every two seconds, named after its scheduled time
    expect(taken.map((r) => r.backup).every((n) => /^backup-\d{8}T\d{5}[02468]Z$/.test(n))).toBe(true)
    const folders = (await readdir(join(f.dir, "backups"))).sort()
    // retention kept the newest two recorded backups; a backup the stop interrupted mid-write (never
    // recorded, newer than all of them) may be left, unfinished, for the next retention to remove
    const recorded = new Set(taken.map((r) => r.backup))
    expect(folders.filter((n) => recorded.has(n))).toEqual(taken.slice(-2).map((r) => r.backup))
    expect(folders.filter((n) => !recorded.has(n)).every((n) => n > taken.at(-1)!.backup)).toBe(true)

    const list = JSON.parse((await cli(f, "backup", "list", "--json")).out) as { backups: Array<{ name: string; finished: boolean; events: number; written: { ok: boolean } }> }
    expect(list.backups.filter((b) => recorded.has(b.name)).map((b) => [b.name, b.finished, b.written.ok])).toEqual(taken.slice(-2).map((r) => [r.backup, true, true]))
    // the seeded history and the demo fleet's
    for (const b of list.backups.filter((x) => recorded.has(x.name))) expect(b.events).toBeGreaterThanOrEqual(12)
    const status = await cli(f, "status", "--json")
    expect(JSON.parse(status.out).backups).toMatchObject({ schedule: "*/2 * * * * *", drillSchedule: null, backup: { ok: true }, alerts: [] })
  }, 180_000)
})

describe("verification and restore drills", () => {
  let f: Fleet
  beforeAll(async () => {
    f = await makeFleet("bk_drill")
    fleets.push(f)
    await seed(f)
  }, 60_000)

  it("a backup is verified after writing: one damaged on its way is a failed backup and retention keeps the old ones", async () => {
    const good = await cli(f, "backup", "now", "--json")
    expect(good.code).toBe(0)
    const first = JSON.parse(good.out)
    expect(first).toMatchObject({ ok: true, events: 12, problems: [], deleted: [] })

    // a target whose writes get damaged (a disk flipping a byte): caught by reading it back
    const folder = folderTarget(join(f.dir, "backups"))
    const damaging = {
      ...folder,
      store: <A, E>(name: string, write: (dir: string) => Effect.Effect<A, E>) =>
        folder.store(name, (dir) =>
          write(dir).pipe(
            Effect.tap(() =>
              Effect.promise(async () => {
                const file = await fileWith(dir, "hello")
                await writeFile(join(dir, file), (await readFile(join(dir, file), "utf8")).replace("hello", "jello"))
              })
            )
          )
        )
    }
    const lines: Array<string> = []
    const outcome = await Effect.runPromise(
      takeBackup({ target: damaging, log: f.log, sql: f.sql, nodeId: "test", keep: 1, at: Date.now() + 5_000 }).pipe(
        Effect.provide(jsonLoggerLayer({ level: (await Effect.runPromise(loadConfig(f.env))).logLevel, write: (l) => lines.push(l) }))
      )
    )
    expect(outcome.ok).toBe(false)
    expect(outcome.problems.join()).toMatch(/events-p\d\d\.ndjson: checksum mismatch/)
    expect(outcome.deleted).toEqual([])
    expect(lines.map((l) => JSON.parse(l)).find((l) => l.level === "error")).toMatchObject({ alert: "backup", backup: outcome.name })
    // keep = 1, but the good backup is still there: a bad one never costs a good one
    expect((await readdir(join(f.dir, "backups"))).sort()).toEqual([first.name, outcome.name].sort())

    const status = await cli(f, "status")
    expect(status.out).toContain(`ALERT: the last backup (${outcome.name}) FAILED`)
    await rm(join(f.dir, "backups", outcome.name!), { recursive: true })
  })

  it("a backup damaged later fails `backup verify` and the drill; status, logs and metrics raise the alert", async () => {
    const taken = JSON.parse((await cli(f, "backup", "now", "--json")).out)
    expect(taken.ok).toBe(true)
    const dir = join(f.dir, "backups", taken.name)
    const file = await fileWith(dir, "hi there")
    expect((await cli(f, "backup", "verify", taken.name)).code).toBe(0)
    const text = await readFile(join(dir, file), "utf8")
    await writeFile(join(dir, file), text.replace("hi there", "hi_there"))

    const verify = await cli(f, "backup", "verify")
    expect(verify.code).toBe(1)
    expect(verify.err).toContain(`backup ${taken.name} FAILED verification`)
    expect(verify.err).toContain(`${file}: checksum mismatch`)
    expect(errorLines(verify.err)[0]).toMatchObject({ alert: "verify", backup: taken.name })

    const drill = await cli(f, "backup", "drill")
    expect(drill.code).toBe(1)
    expect(drill.err).toContain(`restore drill of ${taken.name} FAILED`)
    expect(drill.err).toContain("checksum mismatch")

    const list = JSON.parse((await cli(f, "backup", "list", "--json")).out) as { backups: Array<{ name: string; verified: { ok: boolean }; drilled: { ok: boolean } }> }
    expect(list.backups.find((b) => b.name === taken.name)).toMatchObject({ verified: { ok: false }, drilled: { ok: false } })
    const status = await cli(f, "status")
    expect(status.out).toContain(`ALERT: the last verification (${taken.name}) FAILED`)
    expect(status.out).toContain(`ALERT: the last restore drill (${taken.name}) FAILED`)

    const config = await Effect.runPromise(loadConfig(f.env))
    const registry = new Registry()
    registerBackupMetrics(registry, () => Effect.runPromise(readBackupHealth({ sql: f.sql, log: f.log, config, now: Date.now(), target: "t" })))
    const metrics = await registry.metrics()
    expect(metrics).toContain("botfleet_backup_verify_last_run_ok 0")
    expect(metrics).toContain("botfleet_restore_drill_last_run_ok 0")
    expect(metrics).toContain("botfleet_backup_alerts 2")
    expect(metrics).toMatch(/botfleet_backup_last_success_timestamp_seconds \d{10}/)
    await rm(dir, { recursive: true })
  }, 120_000)

  it("a drill restores the newest backup into scratch stores and compares every projection row; a difference is reported", async () => {
    const taken = JSON.parse((await cli(f, "backup", "now", "--json")).out)
    // the fleet goes on after the backup: alpha has newer events, only its history up to the backup is compared
    await appendFacts(f.log, "alpha", [received(100, 10, 3, "after the backup")], () => new Date().toISOString())
    await projectAll(f)
    // the drill's scratch database is named after the live one, and dropped afterwards
    const scratchPrefix = `${new URL(f.env["DATABASE_URL"]!).pathname.slice(1)}_drill_`
    const databases = async () => (await f.sql.query<{ n: string }>("SELECT count(*) AS n FROM pg_database WHERE starts_with(datname, $1)", [scratchPrefix])).rows[0]!.n

    const ok = await cli(f, "backup", "drill", "--json")
    expect(ok.err.split("\n").filter((l) => l.includes('"error"'))).toEqual([])
    expect(ok.code).toBe(0)
    expect(JSON.parse(ok.out)).toMatchObject({ backup: taken.name, ok: true, events: 12, comparison: { identical: true, settledBots: 2, partialBots: 1 } })
    expect(JSON.parse(ok.out).comparison.rowsCompared).toBeGreaterThan(20)
    expect(await databases()).toBe("0")

    // a live projection drifts from what the events say
    await f.sql.query("UPDATE bots SET name = 'tampered' WHERE bot_id = 'bravo'")
    await f.sql.query("DELETE FROM events_archive WHERE bot_id = 'alpha' AND version = 2")
    const bad = await cli(f, "backup", "drill")
    expect(bad.code).toBe(1)
    expect(bad.err).toContain(`restore drill of ${taken.name} FAILED: the restored projections differ from the live ones`)
    expect(bad.out).toMatch(/bots\s+0\s+0\s+1/)
    expect(bad.out).toContain("bots bot_id=bravo: differs")
    expect(bad.out).toContain("events_archive bot_id=alpha version=2: only in the backup")
    expect(errorLines(bad.err)[0]).toMatchObject({ alert: "drill", backup: taken.name })
    const status = JSON.parse((await cli(f, "status", "--json")).out)
    expect(status.backups.drill).toMatchObject({ ok: false, backup: taken.name })
    expect(status.backups.drill.detail.differences).toEqual([
      { table: "bots", onlyLive: 0, onlyBackup: 0, differing: 1 },
      { table: "events_archive", onlyLive: 0, onlyBackup: 1, differing: 0 }
    ])
    expect(status.backups.alerts.join()).toContain("the last restore drill")
    expect(await databases()).toBe("0")
  }, 180_000)
})
