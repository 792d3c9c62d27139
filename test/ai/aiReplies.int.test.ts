import { randomBytes } from "node:crypto"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ActorDeps } from "../../src/actors/actor.js"
import { makeBotDecider } from "../../src/actors/decider/decide.js"
import { fold } from "../../src/actors/decider/state.js"
import { makeRedisInbox } from "../../src/actors/redisInbox.js"
import { makeMemorySnapshotStore } from "../../src/actors/snapshotStore.js"
import { AI_METHOD } from "../../src/ai/aiConfig.pure.js"
import type { ModelCallOptions } from "../../src/ai/modelCalls.js"
import { makeSecretBox } from "../../src/ai/secretBox.js"
import { startAiStub } from "../../src/ai/stubServer.js"
import type { AiStub } from "../../src/ai/stubServer.js"
import { replayEvents } from "../../src/cli/replay/replay.js"
import { foldState } from "../../src/cli/inspect.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import type { RecordedEvent } from "../../src/events/schema/envelope.js"
import { countProjected, renderMetrics } from "../../src/metrics/registry.js"
import { runBot } from "../../src/telegram/botRunner.js"
import { BotModuleRegistry } from "../../src/telegram/bots/registry.js"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { Sender } from "../../src/telegram/sender.js"
import { createTestPrefix } from "../support/redis.js"

/** Generous: the machine may be busy; polls end as soon as the condition holds. */
const POLL = { timeout: 20_000 }

const t = createTestPrefix("ai-replies")
const registry = new BotModuleRegistry()
let sandbox: Sandbox
let stub: AiStub
let redis: Redis
let log: EventLogService
let deps: ActorDeps
let model: ModelCallOptions

beforeAll(async () => {
  sandbox = await startSandbox({ limits: false })
  stub = await startAiStub()
  redis = new Redis(t.url)
  log = await Effect.runPromise(makeRedisEventLog({ url: t.url, prefix: t.prefix }))
  deps = { log, inbox: makeRedisInbox({ redis, prefix: t.prefix }), snapshots: makeMemorySnapshotStore(), handlerFor: registry.handlerFor }
  model = { box: makeSecretBox(randomBytes(32)), defaultBaseURL: () => stub.baseURL, typingEveryMs: 200 }
})
afterAll(async () => {
  await stub.close()
  await sandbox.close()
  await Effect.runPromise(deps.inbox.close)
  await Effect.runPromise(log.close)
  await t.cleanup()
  redis.disconnect()
})

const persona = { name: "Sunny", tone: "friendly" }

/** Registers an AI bot of the built-in kind (in the log and the sandbox). */
const setUp = async (botId: string, ai: Record<string, unknown>) => {
  const bot = sandbox.world.createBot({ username: `${botId.replaceAll("-", "_")}_bot` })
  const lease = (await Effect.runPromise(log.acquireLease(botId, "setup", 60_000)))!
  const config = { personality: persona, keywords: [{ match: "hours", reply: "We open at 9." }], ai: { model: "botfleet-stub", ...ai } }
  await Effect.runPromise(
    log.append({
      botId,
      expectedVersion: 0,
      fence: lease.fence,
      events: [{ data: { _tag: "BotRegistered", ownerId: "o1", name: botId, kind: "builtin", mode: "sandbox", config }, occurredAt: new Date().toISOString(), correlationId: "test", actor: "owner:o1" }]
    })
  )
  await Effect.runPromise(log.releaseLease(lease))
  return bot
}

/** A user writes; the update goes straight into the bot's inbox (what the ingress does). */
const say = (botId: string, username: string, userId: number, text: string) =>
  Effect.runPromise(deps.inbox.enqueue(botId, sandbox.world.say(username, { userId, text, firstName: "Ann" }).update))

const start = (botId: string, token: string, withModel = true) =>
  runBot({ deps, botId, nodeId: "node-a", token, apiRoot: sandbox.apiRoot, sender: new Sender({ limits: false }), ...(withModel ? { model } : {}) })

const replies = (username: string, chatId: number) => sandbox.world.messages(username, chatId).map((m) => m.text)
const stream = (botId: string): Promise<ReadonlyArray<RecordedEvent>> => Effect.runPromise(log.readStream(botId))
const ofType = (events: ReadonlyArray<RecordedEvent>, type: string) => events.filter((e) => e.type === type).map((e) => e.data as unknown as Record<string, unknown>)

describe("AI replies on the sandbox, with the offline model stub", () => {
  it("answers with the model in the persona's voice, remembers the chat, and replays without calling the model", async () => {
    const bot = await setUp("ai-e2e", { memoryTurns: 2 })
    const running = await start("ai-e2e", bot.token)
    const before = stub.requests
    await say("ai-e2e", bot.username, 41, "what is the weather like?")
    await expect.poll(() => replies(bot.username, 41).length, POLL).toBe(1)
    await say("ai-e2e", bot.username, 41, "and tomorrow?")
    await say("ai-e2e", bot.username, 41, "I want to know the opening hours")
    await say("ai-e2e", bot.username, 41, "thanks, one more thing")
    await expect.poll(() => replies(bot.username, 41).length, POLL).toBe(4)
    await running.stop()
    const texts = replies(bot.username, 41)
    expect(texts[0]).toMatch(/^.+ You said: "what is the weather like\?"\. \(Sunny\) 😊$/)
    // the model saw the earlier turn (conversation memory), keywords still answer first
    expect(texts[1]).toContain("We have talked 1 time before")
    expect(texts[2]).toBe("We open at 9. 😊")
    // memory is bounded: 2 turns verbatim, the older ones in the summary the model is shown
    expect(texts[3]).toContain("We have talked 2 times before")
    const lastPrompt = stub.received.at(-1)!.messages
    expect(lastPrompt[0]!.content).toMatch(/^You are Sunny, a Telegram bot\. Be warm and friendly\./)
    expect(stub.requests - before).toBe(3)

    const events = await stream("ai-e2e")
    expect(ofType(events, "AiReplied").map((d) => d["user"])).toEqual(["what is the weather like?", "and tomorrow?", "thanks, one more thing"])
    expect(ofType(events, "ConversationSummarized")).toEqual([expect.objectContaining({ chatId: 41, dropped: 1, summary: expect.stringContaining("User: what is the weather like?") })])
    expect(ofType(events, "BotApiCallIntended").filter((d) => d["method"] === AI_METHOD)).toHaveLength(3)
    const state = fold(events.map((e) => e.data))
    expect(state.entries.read("c:41")).toMatchObject({ turns: [{ user: "and tomorrow?" }, { user: "thanks, one more thing" }] })
    expect(state.entries.read("ai:bot")).toMatchObject({ replies: 3 })
    // what the bot learned of the user is an event, and `inspect` shows it in the state
    expect(ofType(events, "PersonalityAdapted")[0]).toMatchObject({ userId: 41, language: "en", length: "short" })
    expect(foldState("ai-e2e", events).state["entries"]).toMatchObject({ "p:41": { language: "en" }, "c:41": { turns: expect.any(Array) } })
    expect(lastPrompt[0]!.content).toContain("Answer in English.")

    // replay decides every update again from the recorded results: the same decisions, no model call
    const replayed = stub.requests
    const report = await replayEvents("ai-e2e", events, registry.handlerFor)
    expect(report.divergences).toEqual([])
    expect(report.identical).toBe(true)
    expect(stub.requests).toBe(replayed)
  })

  it("after a crash between the model call's intent and its result, answers with the fallback and never calls the model again", async () => {
    const bot = await setUp("ai-crash", { fallback: "My head is foggy." })
    const entry = await say("ai-crash", bot.username, 42, "tell me a story")
    const [inboxEntry] = await Effect.runPromise(deps.inbox.readAfter("ai-crash", null, 1))
    // what a node that crashed after appending the model call's intent leaves: the intent, no result
    const events = await stream("ai-crash")
    const decided = await makeBotDecider(registry.handlerFor).decide(
      { _tag: "HandleUpdate", inboxId: entry, update: inboxEntry!.update, at: inboxEntry!.receivedAt },
      fold(events.map((e) => e.data))
    )
    expect(decided.at(-1)).toMatchObject({ _tag: "BotApiCallIntended", method: AI_METHOD })
    const lease = (await Effect.runPromise(log.acquireLease("ai-crash", "crashed-node", 60_000)))!
    await Effect.runPromise(
      log.append({
        botId: "ai-crash",
        expectedVersion: events.length,
        fence: lease.fence,
        events: decided.map((data) => ({ data, occurredAt: inboxEntry!.receivedAt, correlationId: `inbox:${entry}`, actor: "user:42" }))
      })
    )
    await Effect.runPromise(log.releaseLease(lease))
    const before = stub.requests
    const running = await start("ai-crash", bot.token)
    await expect.poll(() => replies(bot.username, 42), POLL).toEqual(["My head is foggy. 😊"])
    await running.stop()
    expect(stub.requests).toBe(before)
    const after = await stream("ai-crash")
    expect(ofType(after, "BotApiCallOutcomeUnknown")).toHaveLength(1)
    expect(ofType(after, "AiFallbackUsed")).toEqual([expect.objectContaining({ reason: "unknown", chatId: 42, userId: 42 })])
    expect(ofType(after, "AiReplied")).toEqual([])
  })

  it("falls back when the model is down, slow or the day's budget is spent, and says so in events and metrics", async () => {
    const bot = await setUp("ai-degrade", { timeoutMs: 300, dailyTokens: { bot: 5 } })
    const running = await start("ai-degrade", bot.token)
    const fallback = "Sorry, I cannot think right now. Please try again in a moment. 😊"
    stub.fail({ status: 503, message: "overloaded" }, { hang: true })
    await say("ai-degrade", bot.username, 43, "first question")
    await expect.poll(() => replies(bot.username, 43).length, POLL).toBe(1)
    await say("ai-degrade", bot.username, 43, "second question")
    await expect.poll(() => replies(bot.username, 43).length, POLL).toBe(2)
    // the model is back: one reply spends the bot's 5-token budget for the day
    await say("ai-degrade", bot.username, 43, "third question")
    await expect.poll(() => replies(bot.username, 43).length, POLL).toBe(3)
    const before = stub.requests
    await say("ai-degrade", bot.username, 43, "fourth question")
    await expect.poll(() => replies(bot.username, 43).length, POLL).toBe(4)
    await running.stop()
    expect(stub.requests).toBe(before)
    const texts = replies(bot.username, 43)
    expect([texts[0], texts[1], texts[3]]).toEqual([fallback, fallback, fallback])
    expect(texts[2]).toContain('You said: "third question"')

    const events = await stream("ai-degrade")
    expect(ofType(events, "AiFallbackUsed").map((d) => d["reason"])).toEqual(["unavailable", "timeout", "over_budget"])
    expect(ofType(events, "AiFallbackUsed")[2]!["detail"]).toMatch(/bot's daily token budget/)
    const usage = fold(events.map((e) => e.data)).entries.read("ai:bot") as { tokens: number; fallbacks: Record<string, number> }
    expect(usage.fallbacks).toEqual({ unavailable: 1, timeout: 1, over_budget: 1 })
    // /metrics counts what the projections saw
    countProjected(0, events, new Map([["ai-degrade", "builtin"]]))
    const text = await renderMetrics()
    expect(text).toMatch(/botfleet_ai_replies_total\{kind="builtin",result="over_budget"\} 1/)
    expect(text).toMatch(/botfleet_ai_replies_total\{kind="builtin",result="ok"\} 1/)
    expect(text).toMatch(new RegExp(`botfleet_ai_tokens_total\\{kind="builtin"\\} ${usage.tokens}`))
  })
})
