import { Effect } from "effect"
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ActorDeps } from "../../src/actors/actor.js"
import { makeRedisInbox } from "../../src/actors/redisInbox.js"
import { makeMemorySnapshotStore } from "../../src/actors/snapshotStore.js"
import { createBroadcast, listBroadcasts } from "../../src/broadcast/broadcastStore.js"
import { runBroadcastsOnce } from "../../src/broadcast/runner.js"
import { requestTag, UserTagInvalid } from "../../src/broadcast/userTagRequests.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import type { DomainEvent } from "../../src/events/schema/catalogue.js"
import { runBot } from "../../src/telegram/botRunner.js"
import { BotModuleRegistry } from "../../src/telegram/bots/registry.js"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { Sender } from "../../src/telegram/sender.js"
import { project } from "../api/restSupport.js"
import { useMigratedDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"

/**
 * Segments over tags and imported legacy data, end to end: tags requested by the owner go through
 * the bot's inbox, the running bot records them on its stream, the projector puts them into
 * `bot_sessions`, and a broadcast to `tag=vip` reaches exactly the tagged users; legacy records
 * imported as events reach `imported_records`, and `legacy.plan=pro` selects their users.
 */
const sql = useMigratedDatabase("broadcast_segments")
const t = createTestPrefix("bcast-seg")
const PARTITIONS = 4
let sandbox: Sandbox
let redis: Redis
let log: EventLogService
let deps: ActorDeps

beforeAll(async () => {
  sandbox = await startSandbox()
  redis = new Redis(t.url)
  log = await Effect.runPromise(makeRedisEventLog({ url: t.url, prefix: t.prefix, partitions: PARTITIONS }))
  deps = { log, inbox: makeRedisInbox({ redis, prefix: t.prefix }), snapshots: makeMemorySnapshotStore(), handlerFor: new BotModuleRegistry().handlerFor }
})
afterAll(async () => {
  await sandbox.close()
  await Effect.runPromise(deps.inbox.close)
  await Effect.runPromise(log.close)
  await t.cleanup()
  redis.disconnect()
})

const at = new Date().toISOString()
const legacyUser = (id: number, plan: string, city: string): DomainEvent => ({
  _tag: "LegacyRecordImported", importId: `i${id}`, collection: "users", key: String(id),
  record: { id, first_name: `U${id}`, language_code: "en", plan, profile: { city } }, source: `users.json#$.users[${id}]`, checksum: `c${id}`, at
})

const waitFor = async (what: string, until: () => Promise<boolean>) => {
  for (let i = 0; i < 300; i++) {
    if (await until()) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}

describe("segments over tags and legacy data", () => {
  it("a broadcast to tag=vip reaches exactly the tagged users; legacy.plan=pro exactly the imported pro users", async () => {
    const tg = sandbox.world.createBot({ username: "shop_bot" })
    const ids = Array.from({ length: 12 }, (_, i) => 7000 + i)
    const lease = (await Effect.runPromise(log.acquireLease("shop_bot", "test", 10_000)))!
    const events: DomainEvent[] = [
      { _tag: "BotRegistered", ownerId: "acme", name: "shop_bot", kind: "builtin", mode: "sandbox", config: {} },
      // the legacy import: users 7000..7011, every third on the pro plan
      ...ids.map((id, i) => legacyUser(id, i % 3 === 0 ? "pro" : "free", i < 6 ? "Oslo" : "Bergen"))
    ]
    await Effect.runPromise(log.append({ botId: "shop_bot", expectedVersion: 0, fence: lease.fence, events: events.map((data) => ({ data, occurredAt: at, correlationId: "t", actor: "test" })) }))
    await Effect.runPromise(log.releaseLease(lease))
    for (const id of ids) sandbox.world.say("shop_bot", { userId: id, text: "/start" })
    tg.pending.length = 0

    // the owner tags four users (one tagged twice, one tagged then untagged) and gold on another
    for (const [userId, tag, on] of [[7001, "vip", true], [7004, "VIP", true], [7004, "vip", true], [7007, "vip", true], [7010, "vip", true], [7010, "vip", false], [7002, "gold", true]] as const) {
      await Effect.runPromise(requestTag(deps.inbox, { botId: "shop_bot", userId, tag, on }))
    }
    await expect(Effect.runPromise(requestTag(deps.inbox, { botId: "shop_bot", userId: 7001, tag: "not a tag", on: true }))).rejects.toThrow(/1 to 32 lower-case letters/)
    expect(await Effect.runPromise(Effect.flip(requestTag(deps.inbox, { botId: "shop_bot", userId: 0, tag: "vip", on: true })))).toBeInstanceOf(UserTagInvalid)

    const bot = await runBot({ deps, botId: "shop_bot", nodeId: "n1", token: tg.token, apiRoot: sandbox.apiRoot, sender: new Sender() })
    try {
      const recorded = async () => (await Effect.runPromise(log.readStream("shop_bot"))).filter((e) => e.data._tag === "SessionChanged" && e.data.key.startsWith("tags:"))
      await waitFor("the bot to record the tags", async () => (await recorded()).length === 7)
      // recorded as facts on the bot's stream, nothing sent to anyone
      expect(tg.sent).toHaveLength(0)
      await project(log, sql(), PARTITIONS)
      const tags = await sql().query<{ session_key: string; data: unknown }>("SELECT session_key, data FROM bot_sessions WHERE bot_id = 'shop_bot' AND session_key LIKE 'tags:%' ORDER BY session_key")
      expect(tags.rows).toEqual([
        { session_key: "tags:7001", data: { vip: true } },
        { session_key: "tags:7002", data: { gold: true } },
        { session_key: "tags:7004", data: { vip: true } },
        { session_key: "tags:7007", data: { vip: true } },
        { session_key: "tags:7010", data: {} }
      ])

      const vip = await createBroadcast(sql(), { botId: "shop_bot", ownerId: "acme", text: "VIP preview", segment: "tag=vip", notBefore: new Date() })
      expect(vip.total).toBe(3)
      const pro = await createBroadcast(sql(), { botId: "shop_bot", ownerId: "acme", text: "Pro news", segment: "legacy.plan=pro, legacy.profile.city=Oslo", notBefore: new Date() })
      expect(pro.total).toBe(2)
      const notVip = await createBroadcast(sql(), { botId: "shop_bot", ownerId: "acme", text: "Hello all but VIPs", segment: "tag!=vip|gold", notBefore: new Date() })
      expect(notVip.total).toBe(8)
      await waitFor("the broadcasts to finish", async () => {
        await runBroadcastsOnce({ sql: sql(), log, inbox: deps.inbox }, { window: 10, now: new Date() })
        return (await listBroadcasts(sql(), "shop_bot")).every((b) => b.state === "done")
      })
    } finally {
      await bot.stop()
    }
    const receivers = (text: string) => ids.filter((id) => sandbox.world.messages("shop_bot", id).some((m) => m.text === text))
    expect(receivers("VIP preview")).toEqual([7001, 7004, 7007])
    expect(receivers("Pro news")).toEqual([7000, 7003])
    expect(receivers("Hello all but VIPs")).toEqual([7000, 7003, 7005, 7006, 7008, 7009, 7010, 7011])
    for (const id of ids) {
      const texts = sandbox.world.messages("shop_bot", id).map((m) => m.text)
      expect(new Set(texts).size, `user ${id}`).toBe(texts.length)
    }
  })
})
