import { mkdtemp, readdir, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { migrate } from "../../../src/db/migrator.js"
import { makePgliteSql } from "../../../src/db/pgliteSql.js"
import type { SqlClient } from "../../../src/db/sql.js"
import { makePostgresEventLog } from "../../../src/events/postgresEventLog.js"
import { makeProjector } from "../../../src/projections/projector.js"
import { captureCli } from "../../cli/support.js"
import { appendFacts, received, registered } from "../../projections/fixtures.js"

/*
 * Embedded mode (PGlite under DATA_DIR, the Postgres log): `backup now` writes into DATA_DIR/backups
 * and the restore drill restores into a scratch PGlite folder, compares, and removes it.
 */

let dir: string
const withDb = async <A>(f: (sql: SqlClient) => Promise<A>): Promise<A> => {
  const sql = await makePgliteSql({ dataDir: join(dir, "pglite") })
  try {
    return await f(sql)
  } finally {
    await sql.close()
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "bf-embedded-backups-"))
  await withDb(async (sql) => {
    await migrate(sql)
    const log = makePostgresEventLog({ sql })
    await appendFacts(log, "solo", [registered("o1", "solo"), received(7, 7, 1, "hi")])
    await Effect.runPromise(log.releaseLease((await Effect.runPromise(log.readLease("solo")))!))
    for (let p = 0; p < log.partitions; p++) {
      const projector = makeProjector({ log, sql, partition: p, blockMs: 0 })
      for (;;) if ((await Effect.runPromise(projector.step)).caughtUp) break
    }
  })
}, 120_000)
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const cli = (...argv: Array<string>) => captureCli({ DATA_DIR: dir, LOG_LEVEL: "warning" }, argv)

describe("backups in embedded mode", () => {
  it("backs up into DATA_DIR/backups and drills into a scratch PGlite folder, removed afterwards", async () => {
    const taken = await cli("backup", "now", "--json")
    expect(taken.err).toBe("")
    expect(JSON.parse(taken.out)).toMatchObject({ ok: true, events: 2, target: join(dir, "backups") })
    const name = JSON.parse(taken.out).name as string
    const ok = await cli("backup", "drill")
    expect(ok.code).toBe(0)
    expect(ok.out).toMatch(new RegExp(`^restore drill of ${name}: 2 events restored; \\d+ projection rows equal to the live ones \\(1 bots in full, 0 up to the backup\\)$`))
    const listed = await cli("backup", "list")
    expect(listed.out).toMatch(new RegExp(`${name}\\s+finished\\s+2\\s+\\d+\\s+ok \\S+\\s+-\\s+ok \\S+`))
    expect(listed.out).toContain(`1 backup in ${join(dir, "backups")}`)

    await withDb((sql) => sql.query("UPDATE chats SET messages_in = 5 WHERE bot_id = 'solo'"))
    const bad = await cli("backup", "drill")
    expect(bad.code).toBe(1)
    expect(bad.out).toContain("chats bot_id=solo chat_id=7: differs")
    expect((await readdir(dir)).filter((f) => f.startsWith("drill-"))).toEqual([])
  }, 300_000)
})
