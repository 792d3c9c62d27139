import { Effect, Either } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { migrate } from "../../src/db/migrator.js"
import { makePgliteSql } from "../../src/db/pgliteSql.js"
import { makePgSql } from "../../src/db/pgSql.js"
import type { SqlClient } from "../../src/db/sql.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import type { DomainEvent } from "../../src/events/schema/catalogue.js"
import { makePostgresEventLog } from "../../src/events/postgresEventLog.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import type { KeyCache } from "../../src/privacy/keyCache.js"
import { openUserKeys, withSealing } from "../../src/privacy/sealingLog.js"
import type { UserKeys } from "../../src/privacy/userKeys.js"
import { createTestDatabase } from "../support/db.js"
import { newEvent, textUpdate } from "../support/events.js"
import { createTestPrefix } from "../support/redis.js"

const run = <A, E>(eff: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(eff)
const fleetKey = Buffer.alloc(32, 7)
const at = "2026-12-01T00:00:00.000Z"

/** What user `userId` told the bot: a name and a diary line nobody should read once they are forgotten. */
const conversation = (userId: number, name: string, text: string): ReadonlyArray<DomainEvent> => [
  { _tag: "UserSeen", userId, firstName: name, username: `${name.toLowerCase()}_tg`, at },
  { _tag: "UpdateReceived", inboxId: `${userId}-0`, updateId: userId, update: textUpdate(userId, userId, text), receivedAt: at },
  { _tag: "MessageReceived", chatId: userId, chatType: "private", userId, messageId: 1, text, at },
  { _tag: "ReplySent", chatId: userId, messageId: 2, text: `hello ${name}`, at },
  { _tag: "AiReplied", chatId: userId, userId, updateId: userId, model: "m", day: "2026-12-01", promptTokens: 1, completionTokens: 1, user: text, assistant: `noted, ${name}`, at }
]
const registered: DomainEvent = { _tag: "BotRegistered", ownerId: "o", name: "diary", kind: "builtin", mode: "sandbox" }

interface Backend {
  readonly log: EventLogService
  readonly sql: SqlClient
  readonly close: () => Promise<void>
}

/**
 * The same assertions on every log adapter: what the log stores is sealed, what readers see is
 * clear, and after the user's key is destroyed every reader sees `[erased]` in their fields only.
 */
const sealingSuite = (name: string, open: () => Promise<Backend>) =>
  describe(`sealing at the log boundary: ${name}`, () => {
    let b: Backend
    let keys: UserKeys
    let cache: KeyCache
    let log: EventLogService
    const botId = `diary-${name.replace(/\W/g, "")}`
    beforeAll(async () => {
      b = await open()
      ;({ keys, cache } = openUserKeys(b.sql, fleetKey, { listen: false }))
      log = withSealing(b.log, cache)
    })
    afterAll(async () => {
      cache.close()
      await b.close()
    })

    it("stores names and texts sealed, reads them clear, and [erased] once the user is forgotten", async () => {
      const lease = (await run(log.acquireLease(botId, "t", 10_000)))!
      const events = [registered, ...conversation(42, "Zelda", "my secret diary"), ...conversation(7, "Bob", "bob's shopping list")]
      await run(log.append({ botId, expectedVersion: 0, fence: lease.fence, events: events.map((e) => newEvent(e)) }))

      // stored: nothing personal in clear, in the stream or in the partition log
      const stored = await run(b.log.readStream(botId))
      const storedText = JSON.stringify(stored.map((e) => e.data))
      for (const secret of ["Zelda", "secret diary", "Bob", "shopping list", "zelda_tg"]) expect(storedText).not.toContain(secret)
      expect(storedText).toContain("sealed:v1:42:")
      expect(storedText).toContain("sealed:v1:7:")
      // ids stay in clear: they say whose key opens what
      expect((stored[1]!.data as { userId: number }).userId).toBe(42)

      // read: exactly what was appended
      expect((await run(log.readStream(botId))).map((e) => e.data)).toEqual(events)
      const partition = await run(log.readPartition(log.partitionOf(botId)))
      const mine = partition.filter((d) => Either.isRight(d.event) && d.event.right.botId === botId)
      expect(mine.map((d) => Either.getOrThrow(d.event).data)).toEqual(events)
      // the raw fields (what the projector archives and the audit chain hashes) stay sealed
      expect(mine.map((d) => d.raw["data"]).join("\n")).not.toContain("Zelda")

      expect(await keys.forget(botId, 42, "owner:o")).toBe(true)
      cache.invalidate(botId, 42)
      const after = (await run(log.readStream(botId))).map((e) => e.data)
      const zelda = after.slice(1, 6)
      expect(zelda[0]).toMatchObject({ _tag: "UserSeen", userId: 42, firstName: "[erased]", username: "[erased]" })
      expect(zelda[2]).toMatchObject({ _tag: "MessageReceived", chatId: 42, userId: 42, text: "[erased]" })
      expect(zelda[3]).toMatchObject({ _tag: "ReplySent", chatId: 42, text: "[erased]" })
      expect(zelda[4]).toMatchObject({ _tag: "AiReplied", user: "[erased]", assistant: "[erased]", promptTokens: 1 })
      const update = (zelda[1] as { update: ReturnType<typeof textUpdate> }).update
      expect(update.message).toMatchObject({ text: "[erased]", from: { id: 42, first_name: "[erased]", username: "[erased]" }, chat: { id: 42, type: "private" } })
      expect(JSON.stringify(zelda)).not.toMatch(/Zelda|secret diary/)
      // another user of the same bot is untouched
      expect(after.slice(6)).toEqual(events.slice(6))

      // a forgotten user who writes again: nothing of theirs is recorded, and the bot goes on
      await run(log.append({ botId, expectedVersion: events.length, fence: lease.fence, events: [newEvent(conversation(42, "Zelda", "back again")[2]!)] }))
      const last = (await run(b.log.readStream(botId, { from: events.length + 1 })))[0]!.data
      expect(last).toMatchObject({ _tag: "MessageReceived", userId: 42, text: "[erased]" })
      await run(log.releaseLease(lease))
    })
  })

sealingSuite("Postgres log", async () => {
  const db = await createTestDatabase("sealing_pg")
  const sql = makePgSql(db.url)
  await migrate(sql)
  const log = makePostgresEventLog({ sql })
  return {
    log,
    sql,
    close: async () => {
      await run(log.close)
      await sql.close()
      await db.drop()
    }
  }
})

sealingSuite("Redis log", async () => {
  const db = await createTestDatabase("sealing_redis")
  const sql = makePgSql(db.url)
  await migrate(sql)
  const t = createTestPrefix("sealing")
  const log = await run(makeRedisEventLog({ url: t.url, prefix: t.prefix, partitions: 4 }))
  return {
    log,
    sql,
    close: async () => {
      await run(log.close)
      await t.cleanup()
      await sql.close()
      await db.drop()
    }
  }
})

sealingSuite("PGlite (embedded)", async () => {
  const sql = await makePgliteSql()
  await migrate(sql)
  const log = makePostgresEventLog({ sql })
  return {
    log,
    sql,
    close: async () => {
      await run(log.close)
      await sql.close()
    }
  }
})
