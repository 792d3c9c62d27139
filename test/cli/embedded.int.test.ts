import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { migrate } from "../../src/db/migrator.js"
import { makePgliteSql } from "../../src/db/pgliteSql.js"
import { makePostgresEventLog } from "../../src/events/postgresEventLog.js"
import { captureCli } from "./support.js"

/* Embedded mode (no DATABASE_URL/REDIS_URL): the CLI opens PGlite under DATA_DIR with the Postgres log. */

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "bf-cli-embedded-"))
  const sql = await makePgliteSql({ dataDir: join(dir, "pglite") })
  try {
    await migrate(sql)
    const log = makePostgresEventLog({ sql })
    await Effect.runPromise(
      Effect.gen(function* () {
        const lease = (yield* log.acquireLease("legacy", "test", 10_000))!
        yield* log.append({
          botId: "legacy",
          expectedVersion: 0,
          fence: lease.fence,
          events: [{ occurredAt: "2025-01-01T00:00:00.000Z", correlationId: "c", actor: "owner:o", data: { _tag: "BotRegistered", ownerId: "o", name: "legacy", kind: "builtin", mode: "sandbox" } }]
        })
        yield* log.releaseLease(lease)
      })
    )
  } finally {
    await sql.close()
  }
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const cli = (...argv: Array<string>) => captureCli({ DATA_DIR: dir, LOG_LEVEL: "warning" }, argv)

describe("botfleet CLI in embedded mode", () => {
  it("imports into the embedded log and reads it back, twice without duplicates", async () => {
    const file = fileURLToPath(new URL("../fixtures/legacy/generic.json", import.meta.url))
    const first = await cli("import", "legacy", file, "--json")
    expect(first.err).toBe("")
    expect(first.code).toBe(0)
    expect(JSON.parse(first.out)).toMatchObject({ appended: { fromVersion: 2, toVersion: 14, events: 13 }, reconciliation: { ok: true } })
    const second = await cli("import", "legacy", file, "--json")
    expect(JSON.parse(second.out).plan.totals).toMatchObject({ new: 0, unchanged: 13 })
    const state = JSON.parse((await cli("inspect", "legacy")).out)
    expect(state).toMatchObject({ version: 14, eventCounts: { BotRegistered: 1, LegacyRecordImported: 13 } })
  })
})
