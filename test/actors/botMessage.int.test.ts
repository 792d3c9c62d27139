import { Effect, Schema } from "effect"
import { Composer } from "telegraf"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { CallExecutor } from "../../src/actors/actor.js"
import { BOT_MESSAGE_FIELD } from "../../src/actors/decider/botMessage.js"
import { handoffPortsOf, withHandoffs } from "../../src/actors/handoffDelivery.js"
import { makeRedisInbox } from "../../src/actors/redisInbox.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import type { DomainEvent } from "../../src/events/schema/catalogue.js"
import { makeBotApi } from "../../src/telegram/botApi.js"
import { BotMessageRefused } from "../../src/telegram/bots/fleetContext.js"
import { BotModuleRegistry } from "../../src/telegram/bots/registry.js"
import type { BotContext } from "../../src/telegram/bots/telegrafHandler.js"
import { defaultSendLimits } from "../../src/telegram/limits.pure.js"
import { executeIntent } from "../../src/telegram/recordedCalls.js"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { Sender } from "../../src/telegram/sender.js"
import { makeMiniActor } from "../telegram/support/miniActor.js"
import { createTestPrefix } from "../support/redis.js"

/**
 * Typed bot-to-bot messages end to end, like the handoff's tests: real Redis for the target's
 * inbox and the registrations the owner check reads, the sandbox for Telegram, the real decider
 * on both sides; the built-in kind's config (a button's `send`, declared `messages` with a
 * notify) and owners' telegraf modules (`ctx.fleet.send`, `botMessageSchemas`).
 */
const limits = { ...defaultSendLimits, perChat: { rate: 1, perMs: 1000, burst: 20 } }
const run = Effect.runPromise

const { prefix, url, cleanup } = createTestPrefix("botmsg")
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

/** The shop bot's config: it takes `order.shipped` and tells the user. */
const shopConfig = {
  messages: {
    "order.shipped": { fields: { userId: "integer", orderId: "string", note: "string?" }, notify: { chat: "userId", text: "Your order {orderId} is on its way" } }
  }
}

/** The support bot's config: a button that tells `to` an order shipped. */
const supportConfig = (to: string, payload: Record<string, unknown> = { userId: "{userId}", orderId: "A-{userId}" }, name = "order.shipped") => ({
  menus: { main: { text: "Orders", command: "menu", buttons: [[{ text: "Ship it", answer: "Done", send: { to, name, payload } }]] } }
})

const fleetBot = (botId: string, ownerId: string, config: Record<string, unknown>, o: { kind?: string; registry?: BotModuleRegistry } = {}) => {
  const tg = sandbox.world.createBot({ username: botId })
  const sender = new Sender({ limits })
  const api = makeBotApi(tg.token, { apiRoot: sandbox.apiRoot })
  const telegram: CallExecutor = (id, _state, intent) => executeIntent(intent, { botKey: id, sender, call: api.call, now: () => new Date().toISOString() })
  const executeCall = withHandoffs(telegram, handoffPortsOf({ log, inbox }))
  const events: DomainEvent[] = [
    { _tag: "BotRegistered", ownerId, name: botId, kind: o.kind ?? "builtin", mode: "sandbox", config },
    { _tag: "BotStarted", nodeId: "node-1", fence: 1 }
  ]
  return { tg, executeCall, actor: makeMiniActor({ botId, token: tg.token, apiRoot: sandbox.apiRoot, events, executeCall, ...(o.registry ? { registry: o.registry } : {}) }) }
}

const drain = async (botId: string, actor: ReturnType<typeof makeMiniActor>, cursor: string | null) => {
  let c = cursor
  for (const e of await run(inbox.readAfter(botId, cursor, 100))) {
    await actor.handle(e.update)
    c = e.id
  }
  return c
}

const messageIdsOf = (events: ReadonlyArray<DomainEvent>) =>
  events.flatMap((e) => (e._tag === "UpdateReceived" && (e.update as Record<string, { messageId?: string }>)[BOT_MESSAGE_FIELD] ? [(e.update as Record<string, { messageId: string }>)[BOT_MESSAGE_FIELD]!.messageId] : []))

const taken = (events: ReadonlyArray<DomainEvent>, messageId: string) => events.filter((e) => e._tag === "SessionChanged" && e.key === `message:${messageId}`)

const press = async (bot: ReturnType<typeof fleetBot>, botId: string, userId: number) => {
  await bot.actor.handle(sandbox.world.say(botId, { userId, text: "/menu", firstName: "Ann" }).update)
  const menu = sandbox.world.messages(botId, userId).at(-1)!
  return sandbox.world.click(botId, { userId, messageId: menu.message_id, data: "bf:main:0.0" })
}

describe("typed bot-to-bot messages", () => {
  it("delivers a typed message from a built-in bot's button to another bot of the same owner, recorded on both streams under one message id", async () => {
    await register("shop_bot", "acme")
    await register("desk_bot", "acme")
    const shop = fleetBot("shop_bot", "acme", shopConfig)
    const desk = fleetBot("desk_bot", "acme", supportConfig("shop_bot"))
    await shop.actor.handle(sandbox.world.say("shop_bot", { userId: 51, text: "/start", firstName: "Ann" }).update)
    await desk.actor.handle(await press(desk, "desk_bot", 51))

    const intent = desk.actor.events.find((e) => e._tag === "BotApiCallIntended" && e.method === "botfleet.message") as Extract<DomainEvent, { _tag: "BotApiCallIntended" }>
    expect(intent.params).toEqual({ to: "shop_bot", name: "order.shipped", payload: { userId: 51, orderId: "A-51" } })
    const done = desk.actor.events.find((e) => e._tag === "BotApiCallSucceeded" && e.callId === intent.callId) as { result: { messageId: string } }
    const messageId = done.result.messageId
    expect(messageId).toBe(`desk_bot/${intent.callId}`)

    await drain("shop_bot", shop.actor, null)
    expect(messageIdsOf(shop.actor.events)).toEqual([messageId])
    expect(taken(shop.actor.events, messageId)).toMatchObject([{ patch: { from: "desk_bot", name: "order.shipped", accepted: true } }])
    expect(sandbox.world.messages("shop_bot", 51).at(-1)!.text).toBe("Your order A-51 is on its way")
  })

  it("delivers exactly once across a crash between the sender's append and the target's", async () => {
    await register("shop2_bot", "acme")
    const shop = fleetBot("shop2_bot", "acme", shopConfig)
    const desk = fleetBot("desk2_bot", "acme", supportConfig("shop2_bot"))
    await shop.actor.handle(sandbox.world.say("shop2_bot", { userId: 52, text: "/start" }).update)
    const click = await press(desk, "desk2_bot", 52)

    // decided up to the message's intent, which is appended; then the node dies before delivering it
    let step = await desk.actor.decideOnly(click)
    while (step.at(-1)?._tag === "BotApiCallIntended" && (step.at(-1) as { method: string }).method !== "botfleet.message") {
      desk.actor.append(await desk.executeCall("desk2_bot", desk.actor.state, step.at(-1) as never))
      step = await desk.actor.decideOnly(click)
    }
    const intent = step.at(-1) as Extract<DomainEvent, { _tag: "BotApiCallIntended" }>
    expect(intent.method).toBe("botfleet.message")
    expect(await run(inbox.readAfter("shop2_bot", null, 100))).toEqual([])

    // a second crash: delivered this time, but the node died before recording the result
    await desk.executeCall("desk2_bot", desk.actor.state, intent)
    // the restarted actor decides the press again: the message is delivered again, not closed as unknown
    await desk.actor.resume(click)
    expect(desk.actor.events.filter((e) => e._tag === "BotApiCallOutcomeUnknown")).toEqual([])
    expect(desk.actor.events.filter((e) => e._tag === "BotApiCallSucceeded" && e.callId === intent.callId)).toHaveLength(1)
    expect(desk.actor.events.filter((e) => e._tag === "UpdateReceived" && e.updateId === click.update_id)).toHaveLength(1)

    // the target's inbox holds it twice; it takes it once and notifies once
    await drain("shop2_bot", shop.actor, null)
    const messageId = `desk2_bot/${intent.callId}`
    expect(messageIdsOf(shop.actor.events)).toEqual([messageId, messageId])
    expect(taken(shop.actor.events, messageId)).toHaveLength(1)
    expect(sandbox.world.messages("shop2_bot", 52).filter((m) => m.text === "Your order A-52 is on its way")).toHaveLength(1)
  })

  it("refuses across owners and to no bot (typed, nothing delivered), and a payload or name the target does not declare (recorded, its code never sees it)", async () => {
    await register("rival_shop_bot", "globex")
    const desk = fleetBot("desk3_bot", "acme", supportConfig("rival_shop_bot"))
    await desk.actor.handle(await press(desk, "desk3_bot", 53))
    expect(desk.actor.events.find((e) => e._tag === "BotApiCallFailed")).toMatchObject({ errorCode: 403, description: "Forbidden: message refused: bot rival_shop_bot belongs to another owner" })
    expect(await run(inbox.readAfter("rival_shop_bot", null, 100))).toEqual([])
    expect(sandbox.world.messages("desk3_bot", 53).at(-1)!.text).toBe("Sorry, that did not work right now.")

    const lost = fleetBot("desk4_bot", "acme", supportConfig("nobody_bot"))
    await lost.actor.handle(await press(lost, "desk4_bot", 54))
    expect(lost.actor.events.find((e) => e._tag === "BotApiCallFailed")).toMatchObject({ errorCode: 404 })

    // delivered (same owner), but the payload does not fit the target's schema, then a name it does not declare
    await register("shop5_bot", "acme")
    const shop = fleetBot("shop5_bot", "acme", shopConfig)
    await shop.actor.handle(sandbox.world.say("shop5_bot", { userId: 55, text: "/start" }).update)
    const before = sandbox.world.messages("shop5_bot", 55).length
    const badPayload = fleetBot("desk5_bot", "acme", supportConfig("shop5_bot", { userId: "{userId}", orderId: 7, extra: true }))
    await badPayload.actor.handle(await press(badPayload, "desk5_bot", 55))
    const badName = fleetBot("desk6_bot", "acme", supportConfig("shop5_bot", { userId: "{userId}" }, "order.lost"))
    await badName.actor.handle(await press(badName, "desk6_bot", 55))
    await drain("shop5_bot", shop.actor, null)
    const refusals = shop.actor.events.filter((e) => e._tag === "SessionChanged" && e.key.startsWith("message:")).map((e) => (e as { patch: { refused?: string } }).patch.refused)
    expect(refusals).toHaveLength(2)
    expect(refusals[0]).toMatch(/orderId[\s\S]*Expected string, actual 7/)
    expect(refusals[0]).toMatch(/extra/)
    expect(refusals[1]).toBe("this bot declares no message named order.lost")
    expect(sandbox.world.messages("shop5_bot", 55)).toHaveLength(before)

    // an entry forged into a bot's inbox from another owner's bot is taken (once) but not acted on
    await shop.actor.handle({ update_id: -7, [BOT_MESSAGE_FIELD]: { messageId: "x/1:0", from: "rival_shop_bot", fromOwner: "globex", to: "shop5_bot", name: "order.shipped", payload: { userId: 55, orderId: "X" } } })
    expect(sandbox.world.messages("shop5_bot", 55)).toHaveLength(before)
    expect(shop.actor.events.at(-1)).toMatchObject({ _tag: "SessionChanged", key: "message:x/1:0", patch: { refused: "another owner's bot" } })
  })

  it("works from owners' telegraf modules: ctx.fleet.send with a typed refusal, a declared effect/Schema, ctx.fleet.message and ctx.fleet.tag", async () => {
    const Lead = Schema.Struct({ userId: Schema.Int, score: Schema.Number.pipe(Schema.between(0, 100)) })
    const outcomes: string[] = []
    const registry = new BotModuleRegistry()
    registry.register("crm", () => {
      const c = new Composer<BotContext>()
      c.use(async (ctx, next) => {
        const m = ctx.fleet.message
        if (m === null) return next()
        const lead = m.payload as typeof Lead.Type
        if (lead.score >= 50) ctx.fleet.tag(lead.userId, "hot-lead")
        await ctx.telegram.sendMessage(lead.userId, `Thanks! (score ${lead.score} from ${m.from})`)
      })
      return c
    })
    registry.registerMessageSchemas("crm", { "lead.scored": Lead })
    registry.register("scorer", () => {
      const c = new Composer<BotContext>()
      c.command("score", async (ctx) => {
        const to = ctx.message.text.split(" ")[1]!
        try {
          outcomes.push(await ctx.fleet.send(to, "lead.scored", { userId: ctx.from.id, score: 80 }))
        } catch (e) {
          if (!(e instanceof BotMessageRefused)) throw e
          outcomes.push(`${e.reason}: ${e.message}`)
        }
      })
      return c
    })
    await register("crm_bot", "acme")
    const crm = fleetBot("crm_bot", "acme", {}, { kind: "crm", registry })
    const scorer = fleetBot("scorer_bot", "acme", {}, { kind: "scorer", registry })
    await crm.actor.handle(sandbox.world.say("crm_bot", { userId: 56, text: "/start" }).update)
    await scorer.actor.handle(sandbox.world.say("scorer_bot", { userId: 56, text: "/score crm_bot" }).update)
    await scorer.actor.handle(sandbox.world.say("scorer_bot", { userId: 56, text: "/score rival_shop_bot" }).update)
    expect(outcomes).toEqual([expect.stringMatching(/^scorer_bot\/-?\d+:0$/), "another_owner: Forbidden: message refused: bot rival_shop_bot belongs to another owner"])

    await drain("crm_bot", crm.actor, null)
    expect(sandbox.world.messages("crm_bot", 56).at(-1)!.text).toBe("Thanks! (score 80 from scorer_bot)")
    expect(crm.actor.events.filter((e) => e._tag === "SessionChanged" && e.key === "tags:56")).toMatchObject([{ patch: { "hot-lead": true } }])
    expect(taken(crm.actor.events, outcomes[0]!)).toMatchObject([{ patch: { accepted: true, name: "lead.scored" } }])
  })
})
