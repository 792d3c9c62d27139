import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { migrate } from "../../src/db/migrator.js"
import { makePgliteSql } from "../../src/db/pgliteSql.js"
import type { DomainEvent } from "../../src/events/schema/catalogue.js"
import { makePostgresEventLog } from "../../src/events/postgresEventLog.js"
import { openUserKeys, withSealing } from "../../src/privacy/sealingLog.js"
import { captureCli } from "./support.js"

/* `botfleet users forget` in embedded mode: the keys live in the same PGlite database as the log. */

const KEY = Buffer.alloc(32, 5)
const at = "2026-12-01T00:00:00.000Z"
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "bf-cli-forget-"))
  const sql = await makePgliteSql({ dataDir: join(dir, "pglite") })
  const { cache } = openUserKeys(sql, KEY, { listen: false })
  try {
    await migrate(sql)
    const log = withSealing(makePostgresEventLog({ sql }), cache)
    const events: ReadonlyArray<DomainEvent> = [
      { _tag: "BotRegistered", ownerId: "o", name: "diary", kind: "builtin", mode: "sandbox" },
      { _tag: "UserSeen", userId: 42, firstName: "Zelda", at },
      { _tag: "MessageReceived", chatId: 42, chatType: "private", userId: 42, messageId: 1, text: "my secret diary", at },
      { _tag: "UserSeen", userId: 7, firstName: "Bob", at },
      { _tag: "MessageReceived", chatId: 7, chatType: "private", userId: 7, messageId: 2, text: "bob likes tea", at }
    ]
    await Effect.runPromise(
      Effect.gen(function* () {
        const lease = (yield* log.acquireLease("diary", "test", 10_000))!
        yield* log.append({ botId: "diary", expectedVersion: 0, fence: lease.fence, events: events.map((data, i) => ({ data, occurredAt: at, correlationId: `c${i}`, actor: "system" })) })
        yield* log.releaseLease(lease)
      })
    )
  } finally {
    cache.close()
    await sql.close()
  }
}, 60_000)
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const cli = (...argv: Array<string>) => captureCli({ DATA_DIR: dir, LOG_LEVEL: "warning", BOTFLEET_SECRET_KEY: KEY.toString("base64") }, argv)

describe("botfleet users forget (embedded)", () => {
  it("refuses an unknown bot, a stranger and a malformed id, then forgets the user for tail and inspect, idempotently", async () => {
    expect(JSON.stringify(JSON.parse((await cli("inspect", "diary")).out))).toContain("Zelda")
    const nobody = await cli("users", "forget", "nobody", "42")
    expect(nobody).toMatchObject({ code: 1 })
    expect(nobody.err).toContain("bot nobody not found")
    expect((await cli("users", "forget", "diary", "999")).err).toContain("has no user 999")
    expect((await cli("users", "forget", "diary", "zelda")).code).toBe(2)

    const forgot = await cli("users", "forget", "diary", "42")
    expect(forgot.code).toBe(0)
    expect(forgot.out).toContain("user 42 of bot diary forgotten: key destroyed")
    expect(forgot.out).toContain("events still in clear: none")
    expect(forgot.err).toContain("key destroyed")

    const tail = await cli("tail", "diary", "--no-follow", "--json")
    expect(tail.code).toBe(0)
    expect(tail.out).toContain("[erased]")
    expect(tail.out).not.toMatch(/Zelda|secret diary/)
    expect(tail.out).toContain("bob likes tea")
    expect((await cli("inspect", "diary")).out).not.toContain("Zelda")

    const again = JSON.parse((await cli("users", "forget", "diary", "42", "--json")).out)
    expect(again).toMatchObject({ botId: "diary", userId: 42, alreadyForgotten: true, recordedAt: null, clearTextEvents: 0 })
  }, 60_000)
})
