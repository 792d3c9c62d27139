import { randomBytes } from "node:crypto"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ActorDeps } from "../../src/actors/actor.js"
import { makeRedisInbox } from "../../src/actors/redisInbox.js"
import { makeMemorySnapshotStore } from "../../src/actors/snapshotStore.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import { makeBotApi } from "../../src/telegram/botApi.js"
import { UNAUTHORIZED_REASON, runBot } from "../../src/telegram/botRunner.js"
import { BotModuleRegistry } from "../../src/telegram/bots/registry.js"
import { registerWebhook, startIngress } from "../../src/telegram/ingress.js"
import type { Ingress } from "../../src/telegram/ingress.js"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { Sender } from "../../src/telegram/sender.js"
import { redisOffsetStore } from "../../src/telegram/redisOffsetStore.js"
import { webhookSecretFor } from "../../src/telegram/webhookSecret.js"
import { createTestPrefix } from "../support/redis.js"

/** Generous: the CI machine may be busy; polls end as soon as the condition holds. */
const POLL = { timeout: 15_000 }

const key = randomBytes(32)
const t = createTestPrefix("tg-e2e")
let sandbox: Sandbox
let ingress: Ingress
let redis: Redis
let log: EventLogService
let deps: ActorDeps

const config = { keywords: [{ match: "ping", reply: "pong" }], commands: { hours: "9 to 5" }, personality: { tone: "plain" } }

beforeAll(async () => {
  sandbox = await startSandbox({ webhookRetryMs: 20 })
  redis = new Redis(t.url)
  log = await Effect.runPromise(makeRedisEventLog({ url: t.url, prefix: t.prefix }))
  const inbox = makeRedisInbox({ redis, prefix: t.prefix })
  deps = { log, inbox, snapshots: makeMemorySnapshotStore(), handlerFor: new BotModuleRegistry().handlerFor }
  ingress = await startIngress({ inbox, botStatus: () => Effect.succeed("running" as const), secretFor: (id) => webhookSecretFor(key, id) })
})
afterAll(async () => {
  await ingress.close()
  await sandbox.close()
  await Effect.runPromise(deps.inbox.close)
  await Effect.runPromise(log.close)
  await t.cleanup()
  redis.disconnect()
})

/** Registers the bot in the log and in the sandbox, with its webhook pointing at the ingress. */
const setUp = async (botId: string, username: string) => {
  const bot = sandbox.world.createBot({ username })
  const lease = (await Effect.runPromise(log.acquireLease(botId, "node-a", 60_000)))!
  await Effect.runPromise(
    log.append({
      botId,
      expectedVersion: 0,
      fence: lease.fence,
      events: [{ data: { _tag: "BotRegistered", ownerId: "o1", name: botId, kind: "builtin", mode: "webhook", config }, occurredAt: new Date().toISOString(), correlationId: "test", actor: "owner:o1" }]
    })
  )
  await Effect.runPromise(registerWebhook(makeBotApi(bot.token, { apiRoot: sandbox.apiRoot }), { publicUrl: ingress.url, botId, secret: webhookSecretFor(key, botId) }))
  return bot
}

const start = (botId: string, token: string) => runBot({ deps, botId, nodeId: "node-a", token, apiRoot: sandbox.apiRoot, sender: new Sender() })

const repliesIn = (username: string, chatId: number) => sandbox.world.messages(username, chatId).map((m) => m.text)

describe("end to end on the sandbox: webhook → ingress → inbox → actor → outbox → sandbox", () => {
  it("answers each user message once, in order per chat, across a restart in the middle of the conversation", async () => {
    const bot = await setUp("e2e-shop", "e2e_shop_bot")
    let running = await start("e2e-shop", bot.token)
    sandbox.world.say("e2e_shop_bot", { userId: 11, text: "ping" })
    sandbox.world.say("e2e_shop_bot", { userId: 12, text: "/hours" })
    sandbox.world.say("e2e_shop_bot", { userId: 11, text: "/hours" })
    await expect.poll(() => sandbox.world.messages("e2e_shop_bot").length, POLL).toBe(3)

    // the node stops (drains) while users keep writing; Telegram's deliveries pile up in the inbox
    await running.stop("restart")
    sandbox.world.say("e2e_shop_bot", { userId: 11, text: "ping again" })
    sandbox.world.say("e2e_shop_bot", { userId: 12, text: "ping ping" })
    await expect.poll(() => bot.pending.length, POLL).toBe(0)
    running = await start("e2e-shop", bot.token)
    sandbox.world.say("e2e_shop_bot", { userId: 11, text: "/hours" })
    await expect.poll(() => sandbox.world.messages("e2e_shop_bot").length, POLL).toBe(6)

    expect(repliesIn("e2e_shop_bot", 11)).toEqual(["pong", "9 to 5", "pong", "9 to 5"])
    expect(repliesIn("e2e_shop_bot", 12)).toEqual(["9 to 5", "pong"])
    await running.stop()
    const events = await Effect.runPromise(log.readStream("e2e-shop"))
    const types = events.map((e) => e.type)
    expect(types.filter((x) => x === "UpdateReceived")).toHaveLength(6)
    expect(types.filter((x) => x === "BotApiCallIntended")).toHaveLength(6)
    expect(types.filter((x) => x === "BotApiCallSucceeded")).toHaveLength(6)
    expect(types.filter((x) => x === "ReplySent")).toHaveLength(6)
  })

  it("after a crash between intent and result, records the outcome as unknown and never sends it again", async () => {
    const bot = await setUp("e2e-crash", "e2e_crash_bot")
    sandbox.world.say("e2e_crash_bot", { userId: 21, text: "hello" })
    // what a node that crashed right after appending an intent leaves behind
    const version = await Effect.runPromise(log.streamVersion("e2e-crash"))
    const lease = (await Effect.runPromise(log.readLease("e2e-crash")))!
    await Effect.runPromise(
      log.append({
        botId: "e2e-crash",
        expectedVersion: version,
        fence: lease.fence,
        events: [{ data: { _tag: "BotApiCallIntended", callId: "999:0", method: "sendMessage", params: { chat_id: 21, text: "maybe sent" } }, occurredAt: new Date().toISOString(), correlationId: "test", actor: "system" }]
      })
    )
    const running = await start("e2e-crash", bot.token)
    sandbox.world.say("e2e_crash_bot", { userId: 21, text: "ping" })
    await expect.poll(() => repliesIn("e2e_crash_bot", 21), POLL).toEqual(["pong"])
    await running.stop()
    const events = await Effect.runPromise(log.readStream("e2e-crash"))
    const unknown = events.filter((e) => e.type === "BotApiCallOutcomeUnknown").map((e) => (e.data as { callId: string }).callId)
    expect(unknown).toEqual(["999:0"])
    expect(sandbox.world.messages("e2e_crash_bot").some((m) => m.text === "maybe sent")).toBe(false)
  })

  it("stops messaging a user who blocked the bot, and answers them again once they write after unblocking", async () => {
    const bot = await setUp("e2e-block", "e2e_block_bot")
    let running = await start("e2e-block", bot.token)
    sandbox.world.say("e2e_block_bot", { userId: 31, text: "ping" })
    await expect.poll(() => repliesIn("e2e_block_bot", 31), POLL).toEqual(["pong"])
    // user 31 writes twice, then blocks the bot, while the node is down: both updates wait in the inbox
    await running.stop()
    sandbox.world.say("e2e_block_bot", { userId: 31, text: "ping" })
    sandbox.world.say("e2e_block_bot", { userId: 31, text: "ping" })
    await expect.poll(() => bot.pending.length, POLL).toBe(0)
    sandbox.world.block("e2e_block_bot", 31)
    const callsBefore = bot.calls.get("sendMessage") ?? 0
    running = await start("e2e-block", bot.token)
    sandbox.world.say("e2e_block_bot", { userId: 32, text: "ping" })
    await expect.poll(() => repliesIn("e2e_block_bot", 32), POLL).toEqual(["pong"])
    const events = await Effect.runPromise(log.readStream("e2e-block"))
    expect(events.filter((e) => e.type === "UserBlockedBot")).toHaveLength(1)
    // the first reply learned of the block (403); the second was never tried; user 32 was answered
    expect(bot.calls.get("sendMessage")).toBe(callsBefore + 2)
    expect(repliesIn("e2e_block_bot", 31)).toEqual(["pong"])
    // writing to a bot one blocked restarts it: user 31 unblocks and writes, and is answered
    sandbox.world.block("e2e_block_bot", 31, false)
    sandbox.world.say("e2e_block_bot", { userId: 31, text: "ping" })
    await expect.poll(() => repliesIn("e2e_block_bot", 31), POLL).toEqual(["pong", "pong"])
    await running.stop()
  })

  it("stops a bot whose token was revoked, with the reason recorded, instead of failing forever", async () => {
    const bot = await setUp("e2e-revoked", "e2e_revoked_bot")
    const running = await start("e2e-revoked", bot.token)
    sandbox.world.say("e2e_revoked_bot", { userId: 41, text: "ping" })
    await expect.poll(() => repliesIn("e2e_revoked_bot", 41), POLL).toEqual(["pong"])
    sandbox.world.revoke("e2e_revoked_bot")
    sandbox.world.say("e2e_revoked_bot", { userId: 41, text: "ping" })
    const status = await running.done
    expect(status.status).toBe("stopped")
    await running.stop()
    const events = await Effect.runPromise(log.readStream("e2e-revoked"))
    const stoppedEvent = events.filter((e) => e.type === "BotStopped").at(-1)
    expect((stoppedEvent?.data as { reason: string }).reason).toBe(UNAUTHORIZED_REASON)
    expect(events.some((e) => e.type === "BotApiCallFailed" && (e.data as { errorCode: number }).errorCode === 401)).toBe(true)
  })

  it("runs a polling bot from its lease: replies, and a restart neither loses nor repeats an update", async () => {
    const bot = sandbox.world.createBot({ username: "e2e_poll_bot" })
    const lease = (await Effect.runPromise(log.acquireLease("e2e-poll", "node-a", 60_000)))!
    await Effect.runPromise(
      log.append({
        botId: "e2e-poll",
        expectedVersion: 0,
        fence: lease.fence,
        events: [{ data: { _tag: "BotRegistered", ownerId: "o1", name: "e2e-poll", kind: "builtin", mode: "polling", config }, occurredAt: new Date().toISOString(), correlationId: "test", actor: "owner:o1" }]
      })
    )
    const polling = { offsets: redisOffsetStore(redis, t.prefix), timeoutS: 1 }
    const startPolling = () => runBot({ deps, botId: "e2e-poll", nodeId: "node-a", token: bot.token, apiRoot: sandbox.apiRoot, sender: new Sender(), polling })
    let running = await startPolling()
    sandbox.world.say("e2e_poll_bot", { userId: 51, text: "ping" })
    await expect.poll(() => repliesIn("e2e_poll_bot", 51), POLL).toEqual(["pong"])
    await running.stop()
    sandbox.world.say("e2e_poll_bot", { userId: 51, text: "/hours" })
    running = await startPolling()
    await expect.poll(() => repliesIn("e2e_poll_bot", 51), POLL).toEqual(["pong", "9 to 5"])
    await running.stop()
    const events = await Effect.runPromise(log.readStream("e2e-poll"))
    expect(events.filter((e) => e.type === "UpdateReceived")).toHaveLength(2)
    expect(events.filter((e) => e.type === "UpdateDuplicateDropped")).toHaveLength(0)
  })
})
