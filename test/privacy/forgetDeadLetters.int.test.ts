import { randomBytes } from "node:crypto"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { afterAll, describe, expect, it } from "vitest"
import { makeMemoryInbox } from "../../src/actors/memoryInbox.js"
import { makePostgresInbox } from "../../src/actors/postgresInbox.js"
import { makeRedisInbox } from "../../src/actors/redisInbox.js"
import type { InboxService } from "../../src/actors/inbox.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import { forgetUser } from "../../src/privacy/forgetUser.js"
import { openUserKeys, withSealing } from "../../src/privacy/sealingLog.js"
import { useMigratedDatabase } from "../support/db.js"
import { appendNewBot, legacyBotRegistered, textUpdate } from "../support/events.js"
import { deleteKeysUnder } from "../support/redisCleanup.js"

/*
 * `users forget` deletes the user's updates kept in the inbox's dead letters (production: a Redis
 * stream beside the inbox), which hold the raw update in clear: the inbox is before the log's
 * sealing boundary (docs/privacy.md).
 */

const run = <A, E>(eff: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(eff)
const sql = useMigratedDatabase("forget_dead_letters")
const url = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"
const prefix = `bftest-${randomBytes(3).toString("hex")}`

afterAll(async () => {
  const redis = new Redis(url)
  await deleteKeysUnder(redis, prefix)
  redis.disconnect()
})

const deadLetterOf = async (inbox: InboxService, botId: string, updateId: number, userId: number, text: string) => {
  const id = await run(inbox.enqueue(botId, textUpdate(updateId, userId, text)))
  const [entry] = await run(inbox.readAfter(botId, null, 1_000)).then((es) => es.filter((e) => e.id === id))
  await run(inbox.deadLetter(botId, entry!, "handler threw"))
  return entry!
}

describe("users forget and the inbox's dead letters", () => {
  it.each([
    // copies: what dead-lettering one entry twice leaves (Postgres keeps one row per entry)
    ["Redis", 2, () => makeRedisInbox({ url, prefix, partitions: 4 })],
    ["memory", 2, () => makeMemoryInbox()],
    ["Postgres", 1, () => makePostgresInbox({ sql: sql() })]
  ] as const)("deletes every dead letter the user sent (%s), keeps the others', and a second run finds none", async (name, copies, makeInbox) => {
    const botId = `dl-${name}`
    const inbox = makeInbox()
    const log = makeMemoryEventLog({ partitions: 4 })
    const { keys, cache } = openUserKeys(sql(), Buffer.alloc(32, 4), { listen: false })
    try {
      await appendNewBot(withSealing(log, cache), botId, [
        legacyBotRegistered,
        { ...legacyBotRegistered, data: { _tag: "UserSeen", userId: 42, firstName: "Zelda", at: "2026-12-01T00:00:00.000Z" } }
      ])
      const zelda = await deadLetterOf(inbox, botId, 1, 42, "my secret diary")
      // a crash between dead-lettering and recording can leave two copies of one entry: both go
      await run(inbox.deadLetter(botId, zelda, "handler threw"))
      await deadLetterOf(inbox, botId, 2, 7, "bob likes tea")
      const deps = { log: withSealing(log, cache), sql: sql(), keys, cache, inbox, settle: 10 }
      const report = await run(forgetUser(deps, { botId, userIdText: "42", actor: "owner:o" }))
      expect(report.purged["inbox_dead_letters"]).toBe(copies)
      const left = await run(inbox.readDeadLetters(botId))
      expect(JSON.stringify(left)).not.toMatch(/Zelda|Ada.*secret|secret diary/)
      expect(left.map((d) => (d.update as { update_id: number }).update_id)).toEqual([2])
      const again = await run(forgetUser(deps, { botId, userIdText: "42", actor: "owner:o" }))
      expect(again.purged["inbox_dead_letters"]).toBe(0)
      expect(await run(inbox.dropDeadLetter(botId, "no-such-entry"))).toBe(0)
    } finally {
      cache.close()
      await run(inbox.close)
    }
  })
})
