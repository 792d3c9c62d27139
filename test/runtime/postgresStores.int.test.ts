import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makePostgresInbox } from "../../src/actors/postgresInbox.js"
import { makePostgresSnapshotStore } from "../../src/actors/postgresSnapshotStore.js"
import { migrate } from "../../src/db/migrator.js"
import { makePgSql } from "../../src/db/pgSql.js"
import type { SqlClient } from "../../src/db/sql.js"
import { postgresOffsetStore } from "../../src/telegram/postgresOffsetStore.js"
import { createTestDatabase } from "../support/db.js"

let db: { url: string; drop: () => Promise<void> }
let sql: SqlClient
const run = <A, E>(e: Effect.Effect<A, E>) => Effect.runPromise(e)

beforeAll(async () => {
  db = await createTestDatabase("pgstores")
  sql = makePgSql(db.url)
  await migrate(sql)
})
afterAll(async () => {
  await sql.close()
  await db.drop()
})

describe("Postgres stores of the embedded mode (inbox, snapshots, polling offsets)", () => {
  it("inbox: concurrent enqueues get gapless ids in commit order; a reader past an id never misses an earlier one; trimmed ids are not reused", async () => {
    const inbox = makePostgresInbox({ sql })
    const ids = await Promise.all(Array.from({ length: 40 }, (_, i) => run(inbox.enqueue("bot-a", { update_id: i }))))
    const all = await run(inbox.readAfter("bot-a", null, 100))
    expect(all.map((e) => e.id)).toEqual(Array.from({ length: 40 }, (_, i) => `${i + 1}-0`))
    expect(new Set(ids).size).toBe(40)
    expect(all.every((e) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(e.receivedAt))).toBe(true)
    expect(await run(inbox.lag("bot-a", "30-0"))).toBe(10)
    await run(inbox.trim("bot-a", "40-0"))
    expect(await run(inbox.readAfter("bot-a", null, 100))).toEqual([])
    expect(await run(inbox.enqueue("bot-a", { update_id: 99 }))).toBe("41-0")
    expect(await run(inbox.readAfter("bot-b", null, 10))).toEqual([])
  })

  it("inbox: refuses a non-update, keeps dead letters with their reason, and wakes a waiting reader at once", async () => {
    const inbox = makePostgresInbox({ sql, pollMs: 60_000 })
    await expect(run(inbox.enqueue("bot-c", { nope: 1 }))).rejects.toThrow(/update_id/)
    const waiting = run(inbox.waitFor("bot-c", null, 30_000)).then(() => "woken")
    await run(inbox.enqueue("bot-c", { update_id: 1, message: { text: "hi" } }))
    expect(await waiting).toBe("woken")
    const [entry] = await run(inbox.readAfter("bot-c", null, 1))
    await run(inbox.deadLetter("bot-c", entry!, "handler threw"))
    expect(await run(inbox.readDeadLetters("bot-c"))).toMatchObject([{ entryId: entry!.id, reason: "handler threw", update: { update_id: 1 } }])
  })

  it("snapshots keep the newest version; offsets persist", async () => {
    const snaps = makePostgresSnapshotStore(sql)
    expect(await run(snaps.load("bot-s"))).toBeNull()
    await run(snaps.save("bot-s", { version: 10, schemaVersion: 1, fence: 1, state: { n: 10 } }, []))
    await run(snaps.save("bot-s", { version: 5, schemaVersion: 1, fence: 1, state: { n: 5 } }, []))
    expect(await run(snaps.load("bot-s"))).toEqual({ version: 10, schemaVersion: 1, fence: 1, state: { n: 10 } })
    const offsets = postgresOffsetStore(sql)
    expect(await run(offsets.load("bot-s"))).toBeNull()
    await run(offsets.save("bot-s", 41))
    await run(offsets.save("bot-s", 42))
    expect(await run(offsets.load("bot-s"))).toBe(42)
  })
})
