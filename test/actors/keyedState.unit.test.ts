import { Effect } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { BotActor } from "../../src/actors/actor.js"
import type { ActorDeps, CallExecutor } from "../../src/actors/actor.js"
import { encodeState } from "../../src/actors/decider/snapshot.js"
import { fold } from "../../src/actors/decider/state.js"
import type { UpdateHandler } from "../../src/actors/decider/updateHandler.js"
import { makeMemoryInbox } from "../../src/actors/memoryInbox.js"
import { makeMemorySnapshotStore } from "../../src/actors/snapshotStore.js"
import { replayEvents } from "../../src/cli/replay/replay.js"
import type { DomainEvent } from "../../src/events/schema/catalogue.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import { BotModuleRegistry } from "../../src/telegram/bots/registry.js"
import { executeIntent } from "../../src/telegram/recordedCalls.js"
import { Sender } from "../../src/telegram/sender.js"
import { storedState } from "./support.js"

const run = Effect.runPromise
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const until = async (cond: () => boolean | Promise<boolean>, ms = 20_000) => {
  const end = Date.now() + ms
  while (Date.now() < end && !(await cond())) await sleep(5)
  expect(await cond()).toBe(true)
}

let nextUpdate = 1
const message = (userId: number, text: string, firstName = `User${userId}`) => {
  const id = nextUpdate++
  const entities = text.startsWith("/") ? [{ type: "bot_command", offset: 0, length: text.split(" ")[0]!.length }] : undefined
  return {
    update_id: id,
    message: { message_id: id, date: 1, chat: { id: userId, type: "private" }, from: { id: userId, is_bot: false, first_name: firstName }, text, ...(entities ? { entities } : {}) }
  }
}

/**
 * A stand-in for Telegram behind the real recording path (executeIntent, the sender): answers
 * every call after a short pause, counts how many calls are in flight at once, and keeps what each
 * chat was sent, in the order it arrived.
 */
const fakeTelegram = (pauseMs = () => 1) => {
  let inFlight = 0
  let maxInFlight = 0
  let messageId = 1000
  const sent = new Map<number, string[]>()
  const sender = new Sender({ limits: false })
  const executeCall: CallExecutor = (botId, _state, intent) =>
    executeIntent(intent, {
      botKey: botId,
      sender,
      now: () => new Date().toISOString(),
      call: (method, params) =>
        Effect.promise(async () => {
          inFlight++
          maxInFlight = Math.max(maxInFlight, inFlight)
          await sleep(pauseMs())
          inFlight--
          const chatId = params["chat_id"] as number
          if (method === "sendMessage") sent.set(chatId, [...(sent.get(chatId) ?? []), String(params["text"])])
          return { message_id: ++messageId, chat: { id: chatId, type: "private" }, date: 1, text: params["text"] }
        })
    })
  return { executeCall, sent, maxInFlight: () => maxInFlight }
}

const setup = (handlerFor: ActorDeps["handlerFor"], executeCall: CallExecutor) => {
  const snapshots = makeMemorySnapshotStore()
  const deps: ActorDeps = { log: makeMemoryEventLog({ partitions: 4 }), inbox: makeMemoryInbox(), snapshots, handlerFor, executeCall }
  return { deps, snapshots }
}

const register = async (deps: ActorDeps, botId: string, kind: string, config: unknown) => {
  const lease = (await run(deps.log.acquireLease(botId, "n1", 600_000)))!
  await run(
    deps.log.append({
      botId,
      expectedVersion: 0,
      fence: lease.fence,
      events: [{ data: { _tag: "BotRegistered", ownerId: "o1", name: botId, kind, mode: "sandbox", config }, occurredAt: new Date().toISOString(), correlationId: "test", actor: "owner:o1" }]
    })
  )
  return lease
}

const received = async (deps: ActorDeps, botId: string) =>
  (await run(deps.log.readStream(botId))).flatMap((e) => (e.data._tag === "UpdateReceived" ? [e.data.updateId] : []))

describe("keyed state: a bot that knows more users than it keeps in memory", () => {
  it("loads users and sessions back after dropping them, and ends where a replay from version 1 ends", async () => {
    const telegram = fakeTelegram()
    const registry = new BotModuleRegistry()
    const { deps, snapshots } = setup(registry.handlerFor, telegram.executeCall)
    const lease = await register(deps, "big", "builtin", { greeting: "Hello {name}!", keywords: [{ match: "hi", reply: "hi there" }], commands: {} })
    const spec = { botId: "big", nodeId: "n1", fence: lease.fence, snapshotEvery: 7, batchSize: 16, idleWaitMs: 20, maxResidentEntries: 20 }
    const users = Array.from({ length: 120 }, (_, i) => 1 + i)
    // three rounds over every user, with restarts in between: each round finds the user dropped
    let maxResident = 0
    let total = 0
    for (const round of [0, 1, 2]) {
      const actor = new BotActor(deps, spec)
      const done = actor.run()
      for (const u of users) await run(deps.inbox.enqueue("big", message(u, round === 1 ? "hi" : "/start")))
      total += users.length
      await until(() => {
        maxResident = Math.max(maxResident, actor.status().residentEntries ?? 0)
        return actor.status().updatesHandled === total
      })
      await actor.send({ _tag: "Stop", reason: "round over" })
      await done
    }
    // memory stayed near the cap: on top of it only the entries of the batch in hand and those
    // changed since the last snapshot, far below the 240 users and sessions the bot knows
    expect(maxResident).toBeLessThanOrEqual(20 + 4 * 16)
    // a user seen rounds ago, dropped from memory since, is greeted as returning
    for (const u of users) expect(telegram.sent.get(u)).toEqual([`Hello User${u}!`, "hi there", `Welcome back, User${u}!`])
    const events = await run(deps.log.readStream("big"))
    const folded = fold(events.map((e) => e.data))
    // the snapshot store holds the fold of the whole stream: the bot-level part and every entry
    const keys = [...folded.entries.keys()]
    expect(await storedState(snapshots, "big", keys)).toEqual(encodeState(folded))
    expect(snapshots.entryCount("big")).toBe(keys.length)
    // and replaying the stream with the same code decides exactly what was recorded
    const report = await replayEvents("big", events, registry.handlerFor)
    expect(report.divergences).toEqual([])
    expect(report.inputsReplayed).toBe(total)
  }, 60_000)
})

/** A handler whose updates wait on one or two Bot API calls and keep a per-chat count in the session. */
const chatty: UpdateHandler = {
  handle: async (ctx) => {
    const m = ctx.update.message!
    const key = `${m.from!.id}:${m.chat.id}`
    const count = Number((ctx.state.sessions.get(key) as { n?: number } | undefined)?.n ?? 0) + 1
    const sent = (await ctx.call("sendMessage", { chat_id: m.chat.id, text: `${m.text} #${count}` })) as { message_id: number }
    if (m.text?.startsWith("edit")) await ctx.call("editMessageText", { chat_id: m.chat.id, message_id: sent.message_id, text: `${m.text} #${count} (edited)` })
    const events: DomainEvent[] = [{ _tag: "SessionChanged", key, patch: { n: count } }]
    return events
  }
}

describe("a busy bot decides many conversations together", () => {
  it("has the calls of different chats in flight at once, keeps each chat's order, handles each update once", async () => {
    const telegram = fakeTelegram(() => 3)
    const { deps } = setup(() => chatty, telegram.executeCall)
    const lease = await register(deps, "busy", "chatty", {})
    const actor = new BotActor(deps, { botId: "busy", nodeId: "n1", fence: lease.fence, idleWaitMs: 20, batchSize: 64 })
    const done = actor.run()
    const chats = Array.from({ length: 40 }, (_, i) => 100 + i)
    for (let k = 0; k < 5; k++) for (const c of chats) await run(deps.inbox.enqueue("busy", message(c, k % 2 === 0 ? `edit ${k}` : `m ${k}`)))
    await until(() => actor.status().updatesHandled === 200)
    await actor.send({ _tag: "Stop", reason: "done" })
    await done
    expect(telegram.maxInFlight()).toBeGreaterThan(10)
    for (const c of chats) expect(telegram.sent.get(c)).toEqual(["edit 0 #1", "m 1 #2", "edit 2 #3", "m 3 #4", "edit 4 #5"])
    const ids = await received(deps, "busy")
    expect(new Set(ids).size).toBe(200)
    expect(ids).toHaveLength(200)
    const events = await run(deps.log.readStream("busy"))
    expect((await replayEvents("busy", events, () => chatty)).divergences).toEqual([])
  }, 60_000)

  it("whatever the interleaving of chats and the timing of Telegram: once each, in order per chat, replayable, across a restart", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 1, max: 39 }),
        async (chatOrder, pauses, restartAt) => {
          let p = 0
          const telegram = fakeTelegram(() => pauses[p++ % pauses.length]!)
          const { deps } = setup(() => chatty, telegram.executeCall)
          const lease = await register(deps, "prop", "chatty", {})
          const spec = { botId: "prop", nodeId: "n1", fence: lease.fence, idleWaitMs: 10, batchSize: 8, snapshotEvery: 5, maxResidentEntries: 100 }
          const expected = new Map<number, string[]>()
          const enqueue = async (i: number) => {
            const c = chatOrder[i]!
            const text = i % 3 === 0 ? `edit ${i}` : `m ${i}`
            expected.set(c, [...(expected.get(c) ?? []), `${text} #${(expected.get(c)?.length ?? 0) + 1}`])
            await run(deps.inbox.enqueue("prop", message(c, text)))
          }
          const cut = Math.min(restartAt, chatOrder.length)
          let actor = new BotActor(deps, spec)
          let done = actor.run()
          for (let i = 0; i < cut; i++) await enqueue(i)
          await until(() => actor.status().updatesHandled === cut)
          await actor.send({ _tag: "Stop", reason: "restart" })
          await done
          actor = new BotActor(deps, spec)
          done = actor.run()
          for (let i = cut; i < chatOrder.length; i++) await enqueue(i)
          await until(() => actor.status().updatesHandled === chatOrder.length)
          await actor.send({ _tag: "Stop", reason: "done" })
          await done
          for (const [c, texts] of expected) expect(telegram.sent.get(c)).toEqual(texts)
          const ids = await received(deps, "prop")
          expect(new Set(ids).size).toBe(chatOrder.length)
          expect(ids).toHaveLength(chatOrder.length)
          const events = await run(deps.log.readStream("prop"))
          expect((await replayEvents("prop", events, () => chatty)).divergences).toEqual([])
        }
      ),
      { numRuns: 25 }
    )
  }, 120_000)
})
