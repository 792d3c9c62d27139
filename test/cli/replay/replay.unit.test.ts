import { describe, expect, it } from "vitest"
import { makeBotDecider } from "../../../src/actors/decider/decide.js"
import { echoHandler } from "../../../src/actors/decider/updateHandler.js"
import { RecordedCallUnknown } from "../../../src/actors/decider/updateHandler.js"
import type { UpdateHandler } from "../../../src/actors/decider/updateHandler.js"
import { replayEvents } from "../../../src/cli/replay/replay.js"
import type { DomainEvent, EventOf } from "../../../src/events/schema/catalogue.js"
import type { RecordedEvent } from "../../../src/events/schema/envelope.js"

/** A fake Telegram for recording: every sendMessage gets the next message id. */
const fakeTelegram = () => {
  let nextId = 500
  return (intent: EventOf<"BotApiCallIntended">): ReadonlyArray<DomainEvent> => {
    const p = intent.params as { chat_id: number; text: string }
    if (intent.method !== "sendMessage") return [{ _tag: "BotApiCallSucceeded", callId: intent.callId, result: true }]
    const message = { message_id: nextId++, chat: { id: p.chat_id, type: "private" }, text: p.text }
    return [
      { _tag: "BotApiCallSucceeded", callId: intent.callId, result: message },
      { _tag: "ReplySent", chatId: p.chat_id, messageId: message.message_id, text: p.text, at: "2025-01-01T01:00:00.000Z" }
    ]
  }
}

/**
 * Records a conversation the way the actor does: each entry's events share the correlation id
 * `inbox:<entry>`; a step that ends in a call's intent is followed by the call's outcome (recorded
 * by the "system", at the time it came back), then the next step. `crashAt`: the text whose first
 * call's intent is recorded and then the node dies (the update is handled again after a restart).
 */
const record = async (handler: UpdateHandler, texts: ReadonlyArray<string>, crashAt?: string, interleaveAt?: string): Promise<Array<RecordedEvent>> => {
  const decider = makeBotDecider(() => handler)
  const telegram = fakeTelegram()
  const stream: Array<RecordedEvent> = []
  let state = decider.initialState
  const append = (events: ReadonlyArray<DomainEvent>, at: string, correlationId: string, actor: string) => {
    for (const data of events) {
      stream.push({
        eventId: `e${stream.length + 1}`,
        botId: "echo",
        version: stream.length + 1,
        type: data._tag,
        schemaVersion: 1,
        occurredAt: at,
        correlationId,
        causationId: null,
        actor,
        data,
        position: String(stream.length + 1),
        partition: 0
      })
      state = decider.evolve(state, data)
    }
  }
  append(await decider.decide({ _tag: "Register", ownerId: "o", name: "echo", kind: "echo", mode: "sandbox", at: "2025-01-01T00:00:00.000Z" }, state), "2025-01-01T00:00:00.000Z", "reg", "owner:o")
  for (const [n, text] of texts.entries()) {
    const at = `2025-01-01T00:0${n + 1}:00.000Z`
    const inboxId = `${n + 1}-0`
    const update = { update_id: 100 + n, message: { message_id: n + 1, text, chat: { id: 42, type: "private" }, from: { id: 42, first_name: "Zoë" } } }
    let crash = text === crashAt
    for (;;) {
      const decided = await decider.decide({ _tag: "HandleUpdate", inboxId, update, at }, state)
      append(decided, at, `inbox:${inboxId}`, "user:42")
      const last = decided[decided.length - 1]
      if (last?._tag !== "BotApiCallIntended") break
      if (crash) {
        // the node died after recording the intent; whether Telegram got the call is unknown
        crash = false
        append(await decider.decide({ _tag: "Start", nodeId: "n2", fence: 2, at }, state), at, "node:n2", "system")
        continue
      }
      if (text === interleaveAt) {
        // another writer appended meanwhile: the actor records the outcome on its own, then decides again
        append([{ _tag: "BotConfigChanged", patch: { note: "ops" } }], at, "cli:cfg", "ops:cli")
      }
      append(telegram(last), `2025-01-01T00:0${n + 1}:30.000Z`, `inbox:${inboxId}`, "system")
    }
  }
  return stream
}

/** Replies through the Bot API; to "edit" it also edits its own reply, using the message id Telegram gave it. */
const caller: UpdateHandler = {
  handle: async ({ update, call }) => {
    const m = update.message
    if (!m || typeof m.text !== "string") return []
    try {
      const sent = (await call("sendMessage", { chat_id: m.chat.id, text: `you said ${m.text}` })) as { message_id: number }
      if (m.text === "edit") await call("editMessageText", { chat_id: m.chat.id, message_id: sent.message_id, text: "edited" })
    } catch (e) {
      if (!(e instanceof RecordedCallUnknown)) throw e
    }
    return [{ _tag: "MessageReceived", chatId: m.chat.id, chatType: m.chat.type, messageId: m.message_id, text: m.text, at: "2025-01-01T00:00:00.000Z" }]
  }
}

describe("replay", () => {
  it("re-runs a recorded conversation through the same code: identical", async () => {
    const stream = await record(echoHandler, ["hello", "привет 👋", "bye"])
    const r = await replayEvents("echo", stream, () => echoHandler)
    expect(r).toMatchObject({ identical: true, inputsReplayed: 3, eventsRead: stream.length, divergences: [] })
  })

  it("shows a deliberately changed reply as a divergence at the version of that reply", async () => {
    const stream = await record(echoHandler, ["hello", "bye"])
    const shouting: UpdateHandler = {
      handle: (ctx) =>
        (echoHandler.handle(ctx) as ReadonlyArray<DomainEvent>).map((e) => (e._tag === "ReplySent" && e.text === "bye" ? { ...e, text: "BYE!" } : e))
    }
    const r = await replayEvents("echo", stream, () => shouting)
    const reply = stream.find((e) => e.data._tag === "ReplySent" && e.data.text === "bye")!
    expect(r.identical).toBe(false)
    expect(r.divergences[0]).toMatchObject({
      version: reply.version,
      kind: "events",
      summary: "the current code emits a different ReplySent",
      diff: ['$.text: "bye" → "BYE!"']
    })
    expect(r.divergences.every((d) => d.version === reply.version)).toBe(true)
  })

  it("reports an event the current code no longer emits, and only replays the asked range", async () => {
    const stream = await record(echoHandler, ["one", "two"])
    const silent: UpdateHandler = { handle: () => [] }
    const r = await replayEvents("echo", stream, () => silent)
    expect(r.divergences.filter((d) => d.kind === "events").map((d) => d.summary)).toEqual([
      "the current code no longer emits MessageReceived (recorded 3 events, now 1)",
      "the current code no longer emits MessageReceived (recorded 3 events, now 1)"
    ])
    const secondInput = stream.filter((e) => e.data._tag === "UpdateReceived")[1]!.version
    const ranged = await replayEvents("echo", stream, () => silent, { from: secondInput })
    expect(ranged.inputsReplayed).toBe(1)
    expect(ranged.divergences[0]?.inputVersion).toBe(secondInput)
  })

  it("gives a handler that calls the Bot API its recorded results (real message ids), calling nothing: identical", async () => {
    const stream = await record(caller, ["hi", "edit", "bye"])
    const edit = stream.find((e) => e.data._tag === "BotApiCallIntended" && e.data.method === "editMessageText")!
    expect((edit.data as EventOf<"BotApiCallIntended">).params).toMatchObject({ message_id: 501 })
    const r = await replayEvents("echo", stream, () => caller)
    expect(r).toMatchObject({ identical: true, inputsReplayed: 3, divergences: [] })
  })

  it("replays an update that a crash interrupted between a call's intent and its result: identical", async () => {
    const stream = await record(caller, ["hi", "edit"], "edit")
    expect(stream.filter((e) => e.data._tag === "BotApiCallOutcomeUnknown")).toHaveLength(1)
    const r = await replayEvents("echo", stream, () => caller)
    expect(r).toMatchObject({ identical: true, divergences: [] })
  })

  it("replays an update whose call outcome was recorded after another writer's append: identical", async () => {
    const stream = await record(caller, ["hi", "edit"], undefined, "edit")
    expect(stream.some((e) => e.data._tag === "BotConfigChanged")).toBe(true)
    const r = await replayEvents("echo", stream, () => caller)
    expect(r).toMatchObject({ identical: true, divergences: [] })
  })

  it("shows a changed Bot API call as an api-call divergence at the version of its intent", async () => {
    const stream = await record(caller, ["hi", "edit"])
    const changed: UpdateHandler = {
      handle: (ctx) =>
        caller.handle({ ...ctx, call: (method, params) => ctx.call(method, method === "editMessageText" ? { ...params, text: "EDITED" } : params) })
    }
    const r = await replayEvents("echo", stream, () => changed)
    const edit = stream.find((e) => e.data._tag === "BotApiCallIntended" && e.data.method === "editMessageText")!
    expect(r.divergences[0]).toMatchObject({ version: edit.version, kind: "api-call", diff: ['$.params.text: "edited" → "EDITED"'] })
  })

  it("reports a handler that now throws", async () => {
    const stream = await record(echoHandler, ["x"])
    const broken: UpdateHandler = { handle: () => { throw new Error("boom") } }
    const r = await replayEvents("echo", stream, () => broken)
    expect(r.divergences[0]).toMatchObject({ kind: "error", summary: expect.stringContaining("boom") })
  })
})
