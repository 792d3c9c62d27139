import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { makeMemoryInbox } from "../../src/actors/memoryInbox.js"
import { BROADCAST_FIELD } from "../../src/actors/decider/broadcastMessage.js"
import { controlBroadcast, createBroadcast, listBroadcasts } from "../../src/broadcast/broadcastStore.js"
import { runBroadcastsOnce } from "../../src/broadcast/runner.js"
import { migrate } from "../../src/db/migrator.js"
import { makePgliteSql } from "../../src/db/pgliteSql.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"

/* Embedded mode runs the same broadcast SQL on PGlite: segment (as the API role, RLS), frozen list, runner window. */
describe("broadcasts on PGlite (embedded mode)", () => {
  it("creates a broadcast from the owner's users and feeds the inbox a window at a time", async () => {
    const sql = await makePgliteSql()
    try {
      await migrate(sql)
      await sql.query(
        "INSERT INTO bot_users (bot_id, user_id, owner_id, first_name, language_code, first_seen_at, last_seen_at, messages_in) SELECT 'b', u, 'alice', 'U', 'fr', now(), now(), u % 5 FROM generate_series(1, 30) u"
      )
      const b = await createBroadcast(sql, { botId: "b", ownerId: "alice", text: "Bonjour", segment: "language=fr,messages>=1", notBefore: new Date() })
      expect(b.total).toBe(24)
      const inbox = makeMemoryInbox()
      const log = makeMemoryEventLog({ partitions: 4 })
      expect(await runBroadcastsOnce({ sql, log, inbox }, { window: 10, now: new Date() })).toBe(10)
      // nothing handled yet: the window is full, nothing more goes in
      expect(await runBroadcastsOnce({ sql, log, inbox }, { window: 10, now: new Date() })).toBe(0)
      const entries = await Effect.runPromise(inbox.readAfter("b", null, 100))
      expect(entries.map((e) => (e.update as Record<string, { seq: number }>)[BROADCAST_FIELD]!.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
      expect((await listBroadcasts(sql, "b"))[0]!.queued).toBe(10)
      expect((await controlBroadcast(sql, b.broadcastId, "cancel")).state).toBe("cancelled")
    } finally {
      await sql.close()
    }
  }, 120_000)
})
