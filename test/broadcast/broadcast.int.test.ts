import { Effect } from "effect"
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ActorDeps } from "../../src/actors/actor.js"
import { broadcastUpdate } from "../../src/actors/decider/broadcastMessage.js"
import { makeRedisInbox } from "../../src/actors/redisInbox.js"
import { makeMemorySnapshotStore } from "../../src/actors/snapshotStore.js"
import { BroadcastRefused, controlBroadcast, createBroadcast, listBroadcasts } from "../../src/broadcast/broadcastStore.js"
import { runBroadcastsOnce } from "../../src/broadcast/runner.js"
import { SegmentInvalid } from "../../src/broadcast/segment.pure.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import { runBot } from "../../src/telegram/botRunner.js"
import { BotModuleRegistry } from "../../src/telegram/bots/registry.js"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { Sender } from "../../src/telegram/sender.js"
import { useMigratedDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"

/**
 * Broadcasts end to end: the segment over a real `bot_users` table (Postgres), the runner putting
 * messages into the bot's Redis inbox, the real actor sending them to the sandbox through the
 * sender (Telegram's limits), a runner crash and a bot restart in the middle.
 */
const sql = useMigratedDatabase("broadcast")
const t = createTestPrefix("broadcast")
let sandbox: Sandbox
let redis: Redis
let log: EventLogService
let deps: ActorDeps

beforeAll(async () => {
  sandbox = await startSandbox()
  redis = new Redis(t.url)
  log = await Effect.runPromise(makeRedisEventLog({ url: t.url, prefix: t.prefix }))
  deps = { log, inbox: makeRedisInbox({ redis, prefix: t.prefix }), snapshots: makeMemorySnapshotStore(), handlerFor: new BotModuleRegistry().handlerFor }
})
afterAll(async () => {
  await sandbox.close()
  await Effect.runPromise(deps.inbox.close)
  await Effect.runPromise(log.close)
  await t.cleanup()
  redis.disconnect()
})

const register = async (botId: string, ownerId: string) => {
  const lease = (await Effect.runPromise(log.acquireLease(botId, "test", 10_000)))!
  await Effect.runPromise(log.append({ botId, expectedVersion: 0, fence: lease.fence, events: [{ data: { _tag: "BotRegistered", ownerId, name: botId, kind: "builtin", mode: "sandbox", config: {} }, occurredAt: new Date().toISOString(), correlationId: "t", actor: "test" }] }))
  await Effect.runPromise(log.releaseLease(lease))
}

/** Users as the projection holds them; each has opened the bot in the sandbox (a bot can only write to those). */
const seedUsers = async (botId: string, ownerId: string, users: ReadonlyArray<{ id: number; lang: string; blocked?: boolean }>) => {
  for (const u of users) {
    sandbox.world.say(botId, { userId: u.id, text: "/start" })
    await sql().query(
      "INSERT INTO bot_users (bot_id, user_id, owner_id, first_name, language_code, first_seen_at, last_seen_at, blocked_at) VALUES ($1, $2, $3, 'U', $4, now(), now(), $5)",
      [botId, u.id, ownerId, u.lang, u.blocked ? new Date().toISOString() : null]
    )
  }
  sandbox.world.bot(botId).pending.length = 0
}

const rounds = async (until: () => Promise<boolean>) => {
  for (let i = 0; i < 400 && !(await until()); i++) {
    await runBroadcastsOnce({ sql: sql(), log, inbox: deps.inbox }, { window: 10, now: new Date() })
    await new Promise((r) => setTimeout(r, 100))
  }
}

describe("broadcasts", () => {
  it("sends once to each user of the segment, skips and counts blocked users, survives a runner crash and a bot restart", async () => {
    const tg = sandbox.world.createBot({ username: "news_bot" })
    await register("news_bot", "acme")
    const de = Array.from({ length: 40 }, (_, i) => ({ id: 9000 + i, lang: i < 4 ? "de" : "de-AT", blocked: i >= 37 }))
    const en = Array.from({ length: 10 }, (_, i) => ({ id: 9500 + i, lang: "en" }))
    await seedUsers("news_bot", "acme", [...de, ...en])
    // two users blocked the bot on Telegram's side only: the bot learns it from the 403
    sandbox.world.block("news_bot", 9010)
    sandbox.world.block("news_bot", 9011)

    const created = await createBroadcast(sql(), { botId: "news_bot", ownerId: "acme", text: "Sale starts today!", segment: "language=de", notBefore: new Date() })
    expect(created).toMatchObject({ total: 37, skippedBlocked: 3, state: "running", queued: 0 })

    // paused before anything went out: nothing is put into the inbox
    await controlBroadcast(sql(), created.broadcastId, "pause")
    expect(await runBroadcastsOnce({ sql: sql(), log, inbox: deps.inbox }, { window: 10, now: new Date() })).toBe(0)
    await expect(controlBroadcast(sql(), created.broadcastId, "pause")).rejects.toBeInstanceOf(BroadcastRefused)
    await controlBroadcast(sql(), created.broadcastId, "resume")

    let bot = await runBot({ deps, botId: "news_bot", nodeId: "n1", token: tg.token, apiRoot: sandbox.apiRoot, sender: new Sender() })
    // the runner keeps at most `window` messages waiting
    await runBroadcastsOnce({ sql: sql(), log, inbox: deps.inbox }, { window: 10, now: new Date() })
    expect((await listBroadcasts(sql(), "news_bot"))[0]!.queued).toBe(10)
    // a runner that crashed after putting messages in but before recording it puts them in again
    await sql().query("UPDATE broadcasts SET next_seq = 0 WHERE broadcast_id = $1", [created.broadcastId])
    await rounds(async () => (await listBroadcasts(sql(), "news_bot"))[0]!.handled >= 15)
    // the bot restarts in the middle (its node drained, another takes over)
    await bot.stop("restart")
    bot = await runBot({ deps, botId: "news_bot", nodeId: "n2", token: tg.token, apiRoot: sandbox.apiRoot, sender: new Sender() })
    await rounds(async () => (await listBroadcasts(sql(), "news_bot"))[0]!.state === "done")
    await bot.stop()

    const row = (await listBroadcasts(sql(), "news_bot"))[0]!
    expect(row).toMatchObject({ state: "done", total: 37, sent: 35, blocked: 2, failed: 0, handled: 37, pending: 0, skippedBlocked: 3 })
    for (const u of de) {
      const got = sandbox.world.messages("news_bot", u.id).filter((m) => m.text === "Sale starts today!")
      expect(got, `user ${u.id}`).toHaveLength(u.blocked || u.id === 9010 || u.id === 9011 ? 0 : 1)
    }
    for (const u of en) expect(sandbox.world.messages("news_bot", u.id)).toHaveLength(0)
    // progress is recorded on the bot's stream, as events
    const events = await Effect.runPromise(log.readStream("news_bot"))
    const progress = events.filter((e) => e.data._tag === "SessionChanged" && e.data.key === `broadcast:${created.broadcastId}`)
    expect(progress).toHaveLength(37)
    expect(events.filter((e) => e.data._tag === "UpdateDuplicateDropped").length).toBeGreaterThan(0)
  })

  it("refuses a bad segment, an empty one, and a control from the wrong state, changing nothing", async () => {
    await expect(createBroadcast(sql(), { botId: "news_bot", ownerId: "acme", text: "x", segment: "lang=de", notBefore: new Date() })).rejects.toBeInstanceOf(SegmentInvalid)
    await expect(createBroadcast(sql(), { botId: "news_bot", ownerId: "acme", text: "x", segment: "language=fr", notBefore: new Date() })).rejects.toThrow(/holds no user/)
    // another owner's view of the same bot holds nobody (row-level security)
    await expect(createBroadcast(sql(), { botId: "news_bot", ownerId: "globex", text: "x", segment: "all", notBefore: new Date() })).rejects.toThrow(/holds no user/)
    const before = await listBroadcasts(sql())
    await expect(controlBroadcast(sql(), before[0]!.broadcastId, "resume")).rejects.toThrow(/it is done, so it cannot resume/)
    await expect(controlBroadcast(sql(), 999_999, "cancel")).rejects.toThrow(/no such broadcast/)
    expect(await listBroadcasts(sql())).toEqual(before)
    // a scheduled broadcast waits for its time
    const later = await createBroadcast(sql(), { botId: "news_bot", ownerId: "acme", text: "Later", segment: "language=en", notBefore: new Date(Date.now() + 3_600_000) })
    expect(await runBroadcastsOnce({ sql: sql(), log, inbox: deps.inbox }, { window: 10, now: new Date() })).toBe(0)
    await controlBroadcast(sql(), later.broadcastId, "cancel")
    expect(broadcastUpdate({ broadcastId: 1, seq: 0, userId: 1, text: "x" }).update_id).toBeLessThan(0)
  })
})
