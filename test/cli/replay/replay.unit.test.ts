import { describe, expect, it } from "vitest"
import { makeBotDecider } from "../../../src/actors/decider/decide.js"
import { echoHandler } from "../../../src/actors/decider/updateHandler.js"
import type { UpdateHandler } from "../../../src/actors/decider/updateHandler.js"
import { replayEvents } from "../../../src/cli/replay/replay.js"
import type { DomainEvent } from "../../../src/events/schema/catalogue.js"
import type { RecordedEvent } from "../../../src/events/schema/envelope.js"

/** Records a conversation the way the actor does: one append per decision, sharing correlation, time, actor. */
const record = async (handler: UpdateHandler, texts: ReadonlyArray<string>): Promise<Array<RecordedEvent>> => {
  const decider = makeBotDecider(() => handler)
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
    const update = { update_id: 100 + n, message: { message_id: n + 1, text, chat: { id: 42, type: "private" }, from: { id: 42, first_name: "Zoë" } } }
    append(await decider.decide({ _tag: "HandleUpdate", inboxId: `${n + 1}-0`, update, at }, state), at, `update:${100 + n}`, "user:42")
    // a Bot API result recorded later, in its own append: an input, folded, never re-decided
    append([{ _tag: "BotApiCallSucceeded", callId: `c${n}`, result: { ok: true } }], `2025-01-01T00:0${n + 1}:30.000Z`, `call:c${n}`, "system")
  }
  return stream
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

  it("reports a handler that now throws", async () => {
    const stream = await record(echoHandler, ["x"])
    const broken: UpdateHandler = { handle: () => { throw new Error("boom") } }
    const r = await replayEvents("echo", stream, () => broken)
    expect(r.divergences[0]).toMatchObject({ kind: "error", summary: expect.stringContaining("boom") })
  })
})
