import { Effect, Fiber } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeBotApi } from "../../../src/telegram/botApi.js"
import { memoryOffsetStore, runPoller } from "../../../src/telegram/poller.js"
import { startSandbox } from "../../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../../src/telegram/sandbox/server.js"
import { makeMiniActor } from "../support/miniActor.js"
import { readSession } from "../../../src/actors/decider/entries.js"
import { userOf } from "../../../src/actors/decider/updateHandler.js"
import { defaultSendLimits } from "../../../src/telegram/limits.pure.js"

// a roomier chat burst than Telegram's, on both sides, so a scripted conversation is not paced
const limits = { ...defaultSendLimits, perChat: { rate: 1, perMs: 1000, burst: 10 } }

let sandbox: Sandbox
beforeAll(async () => {
  sandbox = await startSandbox({ limits })
})
afterAll(async () => {
  await sandbox.close()
})

const config = {
  greeting: "Hello {name}, welcome to the shop.",
  help: "I answer questions about the shop.",
  commands: { hours: { reply: "We open at 9.", description: "opening hours" }, price: "Everything costs 5." },
  keywords: [{ match: "refund", reply: "Refunds take 3 days." }],
  fallback: "Sorry, I did not get that.",
  personality: { name: "Shopkeeper", tone: "formal" }
}

const texts = (username: string, chatId: number) => sandbox.world.messages(username, chatId).map((m) => m.text)

describe("the built-in bot on the sandbox", () => {
  it("answers /start, /help, owner commands, keywords and a fallback, in order, with its personality", async () => {
    const bot = sandbox.world.createBot({ username: "shop_bot" })
    const actor = makeMiniActor({ botId: "shop", token: bot.token, apiRoot: sandbox.apiRoot, config, senderOptions: { limits } })
    for (const text of ["/start", "/help", "/hours", "/price", "I want a refund", "blah"]) {
      await actor.handle(sandbox.world.say("shop_bot", { userId: 501, text, firstName: "Ann" }).update)
    }
    const sign = "\n\n— Shopkeeper"
    expect(texts("shop_bot", 501)).toEqual([
      // the formal persona signs its replies, so it does not also name itself in the greeting
      `Hello Ann, welcome to the shop.${sign}`,
      `I answer questions about the shop.\n/hours - opening hours\n/price - Everything costs 5.${sign}`,
      `We open at 9.${sign}`,
      `Everything costs 5.${sign}`,
      `Refunds take 3 days.${sign}`,
      `Sorry, I did not get that.${sign}`
    ])
    // per-user memory and session, recorded as events
    expect(userOf(actor.state, 501)).toMatchObject({ firstName: "Ann", blocked: false })
    expect(readSession(actor.state.entries, "501:501")).toEqual({ messages: 2 })
    expect(actor.events.filter((e) => e._tag === "ReplySent")).toHaveLength(6)
    expect(actor.state.pendingCalls.size).toBe(0)
    // a returning user is welcomed back in their language
    await actor.handle(sandbox.world.say("shop_bot", { userId: 501, text: "/start", firstName: "Ann", languageCode: "de" }).update)
    expect(texts("shop_bot", 501).at(-1)).toBe(`Willkommen zurück, Ann!${sign}`)
  })

  it("keeps each chat's replies in order while many chats talk at once (polling)", async () => {
    const bot = sandbox.world.createBot({ username: "busy_bot" })
    const actor = makeMiniActor({ botId: "busy", token: bot.token, apiRoot: sandbox.apiRoot, config: { keywords: [{ match: "n", reply: "ok" }], commands: {} } })
    const offsets = memoryOffsetStore()
    const fiber = Effect.runFork(
      runPoller({
        botId: "busy",
        api: makeBotApi(bot.token, { apiRoot: sandbox.apiRoot }),
        offsets,
        timeoutS: 1,
        deliver: (updates) => Effect.promise(async () => void (await Promise.all(updates.map((u) => actor.handle(u)))))
      })
    )
    const chats = [601, 602, 603, 604]
    for (let i = 0; i < 5; i++) for (const c of chats) sandbox.world.say("busy_bot", { userId: c, text: `n${i}` })
    await expect.poll(() => sandbox.world.messages("busy_bot").length, { timeout: 15_000 }).toBe(20)
    for (const c of chats) {
      const replies = actor.events.filter((e) => e._tag === "ReplySent" && e.chatId === c).map((e) => (e as { inReplyTo?: number }).inReplyTo!)
      expect(replies).toEqual([...replies].sort((a, b) => a - b))
    }
    // the offset moves once the batch is stored (handled, here)
    await expect.poll(() => offsets.offsets.get("busy") ?? 0, { timeout: 15_000 }).toBeGreaterThan(0)
    await Effect.runPromise(Fiber.interrupt(fiber))
  })

  it("records a user who blocked the bot, and answers them again once they write after unblocking", async () => {
    const bot = sandbox.world.createBot({ username: "block_bot" })
    const actor = makeMiniActor({ botId: "block", token: bot.token, apiRoot: sandbox.apiRoot, config })
    await actor.handle(sandbox.world.say("block_bot", { userId: 701, text: "/start" }).update)
    sandbox.world.block("block_bot", 701)
    await actor.handle(sandbox.world.say("block_bot", { userId: 701, text: "/hours" }).update)
    expect(actor.events.some((e) => e._tag === "UserBlockedBot" && e.userId === 701)).toBe(true)
    expect(userOf(actor.state, 701)?.blocked).toBe(true)
    expect(texts("block_bot", 701)).toHaveLength(1)
    // writing to a bot one blocked restarts it (Telegram unblocks it): the user is answered again
    sandbox.world.block("block_bot", 701, false)
    await actor.handle(sandbox.world.say("block_bot", { userId: 701, text: "/price" }).update)
    expect(userOf(actor.state, 701)?.blocked).toBe(false)
    expect(texts("block_bot", 701)).toHaveLength(2)
  })

  it("never re-sends a call whose outcome a crash left unknown: the update resumes, the reply counts as unknown", async () => {
    const bot = sandbox.world.createBot({ username: "crash_bot" })
    const actor = makeMiniActor({ botId: "crash", token: bot.token, apiRoot: sandbox.apiRoot, config })
    await actor.handle(sandbox.world.say("crash_bot", { userId: 801, text: "/start" }).update)
    // crash after the intent was appended, before it was sent or its result recorded
    const hours = sandbox.world.say("crash_bot", { userId: 801, text: "/hours" }).update
    const step = await actor.decideOnly(hours)
    expect(step.map((e) => e._tag)).toEqual(["BotApiCallIntended"])
    expect(actor.state.pendingCalls.size).toBe(1)
    // the restarted actor handles the same update again: the open call is recorded as unknown, not sent
    const sentBefore = bot.calls.get("sendMessage")
    await actor.resume(hours)
    expect(bot.calls.get("sendMessage")).toBe(sentBefore)
    expect(actor.state.pendingCalls.size).toBe(0)
    expect(actor.events.filter((e) => e._tag === "BotApiCallOutcomeUnknown")).toHaveLength(1)
    expect(actor.events.filter((e) => e._tag === "UpdateReceived" && e.updateId === (hours as { update_id: number }).update_id)).toHaveLength(1)
    await actor.handle(sandbox.world.say("crash_bot", { userId: 801, text: "/price" }).update)
    expect(texts("crash_bot", 801)).toHaveLength(2)
  })
})
