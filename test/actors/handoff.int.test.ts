import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { CallExecutor } from "../../src/actors/actor.js"
import { HANDOFF_FIELD, handoffUpdateId } from "../../src/actors/decider/handoff.js"
import { handoffPortsOf, withHandoffs } from "../../src/actors/handoffDelivery.js"
import { makeRedisInbox } from "../../src/actors/redisInbox.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import type { DomainEvent } from "../../src/events/schema/catalogue.js"
import { makeBotApi } from "../../src/telegram/botApi.js"
import { defaultSendLimits } from "../../src/telegram/limits.pure.js"
import { executeIntent } from "../../src/telegram/recordedCalls.js"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { Sender } from "../../src/telegram/sender.js"
import { makeMiniActor } from "../telegram/support/miniActor.js"
import { createTestPrefix } from "../support/redis.js"

/**
 * Bot-to-bot handoff end to end: real Redis for the target's inbox and for the registrations the
 * owner check reads, the sandbox for Telegram, the real decider and built-in kind on both sides.
 */
const limits = { ...defaultSendLimits, perChat: { rate: 1, perMs: 1000, burst: 20 } }
const run = Effect.runPromise

const { prefix, url, cleanup } = createTestPrefix("handoff")
const inbox = makeRedisInbox({ url, prefix, partitions: 4 })
let log: EventLogService
let sandbox: Sandbox

const register = async (botId: string, ownerId: string) => {
  const lease = (await run(log.acquireLease(botId, "test", 10_000)))!
  await run(log.append({ botId, expectedVersion: 0, fence: lease.fence, events: [{ data: { _tag: "BotRegistered", ownerId, name: botId, kind: "builtin", mode: "sandbox" }, occurredAt: new Date().toISOString(), correlationId: "t", actor: "test" }] }))
  await run(log.releaseLease(lease))
}

beforeAll(async () => {
  sandbox = await startSandbox({ limits })
  log = await run(makeRedisEventLog({ url, prefix, partitions: 4 }))
})
afterAll(async () => {
  await sandbox.close()
  await run(inbox.close)
  await run(log.close)
  await cleanup()
})

const supportConfig = (to: string) => ({
  menus: { main: { text: "How can I help?", command: "menu", buttons: [[{ text: "Talk to sales", answer: "Passing you on", handoff: { to, context: "wants a quote for 10 seats" } }]] } }
})

/** A bot on the sandbox whose calls go through the fleet's executor: handoffs to the inbox, the rest to Telegram. */
const fleetBot = (botId: string, ownerId: string, config: Record<string, unknown>) => {
  const tg = sandbox.world.createBot({ username: botId })
  const sender = new Sender({ limits })
  const api = makeBotApi(tg.token, { apiRoot: sandbox.apiRoot })
  const telegram: CallExecutor = (id, _state, intent) => executeIntent(intent, { botKey: id, sender, call: api.call, now: () => new Date().toISOString() })
  const executeCall = withHandoffs(telegram, handoffPortsOf({ log, inbox }))
  const events: DomainEvent[] = [
    { _tag: "BotRegistered", ownerId, name: botId, kind: "builtin", mode: "sandbox", config },
    { _tag: "BotStarted", nodeId: "node-1", fence: 1 }
  ]
  return { tg, executeCall, actor: makeMiniActor({ botId, token: tg.token, apiRoot: sandbox.apiRoot, events, executeCall }) }
}

/** Hands every entry of the bot's inbox after `cursor` to its actor, like the actor loop; returns the new cursor. */
const drain = async (botId: string, actor: ReturnType<typeof makeMiniActor>, cursor: string | null) => {
  let c = cursor
  for (const e of await run(inbox.readAfter(botId, cursor, 100))) {
    await actor.handle(e.update)
    c = e.id
  }
  return c
}

const handoffIdsOf = (events: ReadonlyArray<DomainEvent>) =>
  events.flatMap((e) => (e._tag === "UpdateReceived" && (e.update as Record<string, { handoffId?: string }>)[HANDOFF_FIELD] ? [(e.update as Record<string, { handoffId: string }>)[HANDOFF_FIELD]!.handoffId] : []))

describe("bot-to-bot handoff", () => {
  it("hands a user to a bot of the same owner: recorded on both streams under one handoff id; the target greets with the context", async () => {
    await register("sales_bot", "acme")
    await register("support_bot", "acme")
    const sales = fleetBot("sales_bot", "acme", { handoffGreeting: "Hi {name}, {from} told me you {context}." })
    const support = fleetBot("support_bot", "acme", supportConfig("sales_bot"))
    // the user has opened both bots (Telegram lets a bot write only to users who started it)
    await sales.actor.handle(sandbox.world.say("sales_bot", { userId: 41, text: "/start", firstName: "Ann" }).update)
    await support.actor.handle(sandbox.world.say("support_bot", { userId: 41, text: "/menu", firstName: "Ann" }).update)
    const menu = sandbox.world.messages("support_bot", 41).at(-1)!
    await support.actor.handle(sandbox.world.click("support_bot", { userId: 41, messageId: menu.message_id, data: "bf:main:0.0" }))

    const call = support.actor.events.find((e) => e._tag === "BotApiCallIntended" && e.method === "botfleet.handoff")!
    const done = support.actor.events.find((e) => e._tag === "BotApiCallSucceeded" && e.callId === (call as { callId: string }).callId) as { result: { handoffId: string } }
    const handoffId = done.result.handoffId
    expect(handoffId).toBe(`support_bot/${(call as { callId: string }).callId}`)

    await drain("sales_bot", sales.actor, null)
    expect(handoffIdsOf(sales.actor.events)).toEqual([handoffId])
    expect(sandbox.world.messages("sales_bot", 41).at(-1)!.text).toBe("Hi Ann, support_bot told me you wants a quote for 10 seats.")
    expect(sales.actor.events.filter((e) => e._tag === "SessionChanged" && e.key === `handoff:${handoffId}`)).toHaveLength(1)
  })

  it("delivers exactly once across a crash between the source's append and the target's", async () => {
    await register("sales2_bot", "acme")
    const sales = fleetBot("sales2_bot", "acme", {})
    const support = fleetBot("support2_bot", "acme", supportConfig("sales2_bot"))
    await sales.actor.handle(sandbox.world.say("sales2_bot", { userId: 42, text: "/start", firstName: "Bo" }).update)
    await support.actor.handle(sandbox.world.say("support2_bot", { userId: 42, text: "/menu", firstName: "Bo" }).update)
    const menu = sandbox.world.messages("support2_bot", 42).at(-1)!
    const press = sandbox.world.click("support2_bot", { userId: 42, messageId: menu.message_id, data: "bf:main:0.0" })

    // the press is decided up to the handoff's intent, which is appended; then the node dies before delivering it
    let step = await support.actor.decideOnly(press)
    while (step.at(-1)?._tag === "BotApiCallIntended" && (step.at(-1) as { method: string }).method !== "botfleet.handoff") {
      support.actor.append(await support.executeCall("support2_bot", support.actor.state, step.at(-1) as never))
      step = await support.actor.decideOnly(press)
    }
    const intent = step.at(-1) as Extract<DomainEvent, { _tag: "BotApiCallIntended" }>
    expect(intent.method).toBe("botfleet.handoff")
    expect(await run(inbox.readAfter("sales2_bot", null, 100))).toEqual([])

    // a second crash: delivered this time, but the node died before recording the result
    await support.executeCall("support2_bot", support.actor.state, intent)

    // the restarted actor decides the press again: the handoff is sent again (not closed as unknown)
    await support.actor.resume(press)
    expect(support.actor.events.filter((e) => e._tag === "BotApiCallOutcomeUnknown")).toEqual([])
    expect(support.actor.events.filter((e) => e._tag === "BotApiCallSucceeded" && e.callId === intent.callId)).toHaveLength(1)
    expect(support.actor.state.pendingCalls.size).toBe(0)
    expect(support.actor.events.filter((e) => e._tag === "UpdateReceived" && e.updateId === press.update_id)).toHaveLength(1)

    // the target's inbox holds the handoff twice; it takes it once and greets once
    await drain("sales2_bot", sales.actor, null)
    const handoffId = `support2_bot/${intent.callId}`
    expect(handoffIdsOf(sales.actor.events)).toEqual([handoffId, handoffId])
    expect(sales.actor.events.filter((e) => e._tag === "SessionChanged" && e.key === `handoff:${handoffId}`)).toHaveLength(1)
    const greetings = sandbox.world.messages("sales2_bot", 42).filter((m) => m.text?.includes("wants a quote"))
    expect(greetings.map((m) => m.text)).toEqual(["Hello Bo! support2_bot passed you on to me: wants a quote for 10 seats"])
    expect(handoffUpdateId(handoffId)).toBeLessThan(0)
  })

  it("refuses a handoff to another owner's bot or to no bot, delivering nothing; the user is told", async () => {
    await register("rival_bot", "globex")
    const support = fleetBot("support3_bot", "acme", supportConfig("rival_bot"))
    await support.actor.handle(sandbox.world.say("support3_bot", { userId: 43, text: "/menu" }).update)
    const menu = sandbox.world.messages("support3_bot", 43).at(-1)!
    await support.actor.handle(sandbox.world.click("support3_bot", { userId: 43, messageId: menu.message_id, data: "bf:main:0.0" }))
    expect(support.actor.events.find((e) => e._tag === "BotApiCallFailed")).toMatchObject({ errorCode: 403, description: "Forbidden: handoff refused: bot rival_bot belongs to another owner" })
    expect(await run(inbox.readAfter("rival_bot", null, 100))).toEqual([])
    expect(sandbox.world.messages("support3_bot", 43).at(-1)!.text).toBe("Sorry, I could not pass you on right now.")

    const lost = fleetBot("support4_bot", "acme", supportConfig("nobody_bot"))
    await lost.actor.handle(sandbox.world.say("support4_bot", { userId: 44, text: "/menu" }).update)
    const m = sandbox.world.messages("support4_bot", 44).at(-1)!
    await lost.actor.handle(sandbox.world.click("support4_bot", { userId: 44, messageId: m.message_id, data: "bf:main:0.0" }))
    expect(lost.actor.events.find((e) => e._tag === "BotApiCallFailed")).toMatchObject({ errorCode: 404 })

    // an entry forged into a bot's inbox from another owner's bot is taken (once) but not acted on
    const target = fleetBot("victim_bot", "acme", {})
    await target.actor.handle(sandbox.world.say("victim_bot", { userId: 45, text: "/start" }).update)
    const before = sandbox.world.messages("victim_bot", 45).length
    await target.actor.handle({ update_id: -5, [HANDOFF_FIELD]: { handoffId: "x/1:0", from: "rival_bot", fromOwner: "globex", to: "victim_bot", userId: 45, chatId: 45, context: "hi" } })
    expect(sandbox.world.messages("victim_bot", 45)).toHaveLength(before)
    expect(target.actor.events.at(-1)).toMatchObject({ _tag: "SessionChanged", key: "handoff:x/1:0", patch: { refused: "another owner's bot" } })
  })
})
