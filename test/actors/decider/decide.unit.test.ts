import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { makeBotDecider } from "../../../src/actors/decider/decide.js"
import type { BotInput } from "../../../src/actors/decider/input.js"
import { hasSeen } from "../../../src/actors/decider/dedupeWindow.js"
import { SNAPSHOT_SCHEMA_VERSION, decodeCore, encodeCore, encodeState } from "../../../src/actors/decider/snapshot.js"
import { newEntryReads, readSession } from "../../../src/actors/decider/entries.js"
import { fold, initialState } from "../../../src/actors/decider/state.js"
import { isoToMs } from "../../../src/actors/decider/time.js"
import { echoHandler, userOf, viewOf } from "../../../src/actors/decider/updateHandler.js"
import type { UpdateHandler } from "../../../src/actors/decider/updateHandler.js"
import type { DomainEvent } from "../../../src/events/schema/catalogue.js"
import { deciderSpec } from "../deciderSpec.js"

const decider = makeBotDecider(() => echoHandler)
const noCalls = () => Promise.reject(new Error("this handler makes no Bot API calls"))
const given = deciderSpec(decider)
const at = "2026-01-01T10:00:00.000Z"
const registered: DomainEvent = { _tag: "BotRegistered", ownerId: "o1", name: "Echo", kind: "echo", mode: "sandbox", config: { greeting: "hi" } }
const text = (updateId: number, body: string, chatId = 7) => ({
  update_id: updateId,
  message: { message_id: updateId * 10, chat: { id: chatId, type: "private" }, from: { id: 99 }, text: body }
})
const received = (inboxId: string, updateId: number, body: string, receivedAt = at): DomainEvent => ({
  _tag: "UpdateReceived",
  inboxId,
  updateId,
  update: text(updateId, body),
  receivedAt
})

describe("bot decider", () => {
  it("records the update, the message and the echo reply together", async () => {
    const state = await given([registered]).when({ _tag: "HandleUpdate", inboxId: "1-0", update: text(1, "hello"), at }).then([
      received("1-0", 1, "hello"),
      { _tag: "MessageReceived", chatId: 7, chatType: "private", userId: 99, messageId: 10, text: "hello", at },
      { _tag: "ReplySent", chatId: 7, messageId: -10, text: "hello", inReplyTo: 10, at }
    ])
    expect(state.inboxCursor).toBe("1-0")
    expect(state.updatesHandled).toBe(1)
  })

  it("drops a redelivered update_id with no second effect, and still moves the cursor", async () => {
    const state = await given([registered, received("1-0", 1, "hello")])
      .when({ _tag: "HandleUpdate", inboxId: "2-0", update: text(1, "hello"), at })
      .then([{ _tag: "UpdateDuplicateDropped", inboxId: "2-0", updateId: 1 }])
    expect(state.inboxCursor).toBe("2-0")
  })

  it("remembers update ids for at least 24 hours of recorded time, not as a high-water mark", async () => {
    // a lower id arriving after a higher one is new, not a duplicate
    await given([registered, received("1-0", 5, "a")])
      .when({ _tag: "HandleUpdate", inboxId: "2-0", update: text(3, "b"), at })
      .then([received("2-0", 3, "b"), ...(await echoHandler.handle({ state: viewOf(initialState, newEntryReads()), update: text(3, "b"), updateId: 3, inboxId: "2-0", at, call: noCalls }))])
    const dayLater = "2026-01-02T09:59:59.000Z"
    await given([registered, received("1-0", 5, "a"), received("2-0", 6, "c", dayLater)])
      .when({ _tag: "HandleUpdate", inboxId: "3-0", update: text(5, "a"), at: dayLater })
      .then([{ _tag: "UpdateDuplicateDropped", inboxId: "3-0", updateId: 5 }])
  })

  it("forgets update ids once they fall out of the window, so the state stays bounded", async () => {
    const days = ["2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-05T00:00:00Z"] as const
    // an id seen two days ago is new again: Telegram reuses ids after a quiet week
    await given([registered, received("1-0", 1, "a", days[0]), received("2-0", 2, "b", days[1])])
      .when({ _tag: "HandleUpdate", inboxId: "3-0", update: text(1, "again"), at: days[2] })
      .then([received("3-0", 1, "again", days[2]), ...(await echoHandler.handle({ state: viewOf(initialState, newEntryReads()), update: text(1, "again"), updateId: 1, inboxId: "3-0", at: days[2], call: noCalls }))])
    // a month of one update a minute keeps only about a day of ids, never the whole history
    const start = isoToMs("2026-01-01T00:00:00Z")
    const month = Array.from({ length: 60 * 24 * 30 }, (_, i) => received(`${i + 1}-0`, i + 1, "x", new Date(start + i * 60_000).toISOString()))
    const state = fold([registered, ...month])
    // consecutive ids are one run, whatever their number: the window is a few numbers, not 43,200 ids
    expect(state.seenUpdates.runs).toHaveLength(1)
    expect(hasSeen(state.seenUpdates, month.length, start + month.length * 60_000)).toBe(true)
    // a day after the last one, the whole run is forgotten
    expect(hasSeen(state.seenUpdates, month.length, start + month.length * 60_000 + 26 * 3600_000)).toBe(false)
  })

  it("records an entry without update_id as failed instead of handling it", async () => {
    await given([registered])
      .when({ _tag: "HandleUpdate", inboxId: "1-0", update: { nope: true }, at })
      .then([{ _tag: "UpdateFailed", inboxId: "1-0", updateId: -1, reason: "the entry has no numeric update_id" }])
  })

  it("lets the bot kind decide what an update causes, async handlers included", async () => {
    const handler: UpdateHandler = {
      handle: async ({ updateId }) => [{ _tag: "SessionChanged", key: "7:99", patch: { last: updateId } }]
    }
    const spec = deciderSpec(makeBotDecider(() => handler))
    const state = await spec([registered])
      .when({ _tag: "HandleUpdate", inboxId: "1-0", update: text(4, "x"), at })
      .then([received("1-0", 4, "x"), { _tag: "SessionChanged", key: "7:99", patch: { last: 4 } }])
    expect(readSession(state.entries, "7:99")).toEqual({ last: 4 })
  })

  it("applies config changes as merge patches without a restart", async () => {
    const state = await given([registered, { _tag: "BotStarted", nodeId: "n1", fence: 1 }])
      .when({ _tag: "ChangeConfig", patch: { greeting: null, tone: "dry" }, at })
      .then([{ _tag: "BotConfigChanged", patch: { greeting: null, tone: "dry" } }])
    expect(state.config).toEqual({ tone: "dry" })
    expect(state.status).toBe("running")
  })

  it("refuses a config patch that is not an object", async () => {
    await given([registered]).when({ _tag: "ChangeConfig", patch: [1], at }).thenThrows((e) => expect(String(e)).toMatch(/JSON object/))
  })

  it("walks the lifecycle: started, crashed, gave up, and a stop only when running", async () => {
    await given([registered]).when({ _tag: "Start", nodeId: "n1", fence: 3, at }).then([{ _tag: "BotStarted", nodeId: "n1", fence: 3 }])
    await given([registered, { _tag: "BotStarted", nodeId: "n1", fence: 3 }]).when({ _tag: "Start", nodeId: "n1", fence: 3, at }).then([])
    await given([registered]).when({ _tag: "Stop", nodeId: "n1", reason: "drain", at }).then([])
    const crashed = await given([registered, { _tag: "BotStarted", nodeId: "n1", fence: 3 }])
      .when({ _tag: "RecordCrash", nodeId: "n1", reason: "worker exited", attempt: 1, at })
      .then([{ _tag: "BotCrashed", nodeId: "n1", reason: "worker exited", attempt: 1 }])
    expect(crashed.crashes).toBe(1)
    const failed = await given([registered]).when({ _tag: "GiveUp", lastError: "boom", attempts: 5, at }).then([
      { _tag: "BotGaveUp", lastError: "boom", attempts: 5 }
    ])
    expect(failed.status).toBe("failed")
  })

  it("refuses to start or register a removed bot twice", async () => {
    await given([registered, { _tag: "BotRemoved", reason: "owner" }]).when({ _tag: "Start", nodeId: "n", fence: 1, at }).thenThrows()
    await given([registered])
      .when({ _tag: "Register", ownerId: "o", name: "n", kind: "echo", mode: "polling", at })
      .thenThrows()
  })

  it("records a handler failure so the cursor moves past the poison update", async () => {
    const state = await given([registered])
      .when({ _tag: "FailUpdate", inboxId: "9-0", update: text(9, "boom"), reason: "Error: boom", at })
      .then([{ _tag: "UpdateFailed", inboxId: "9-0", updateId: 9, reason: "Error: boom" }])
    expect(state.inboxCursor).toBe("9-0")
    expect(state.updatesFailed).toBe(1)
  })

  it("tracks Bot API calls whose outcome is not recorded yet", () => {
    const state = fold([
      registered,
      { _tag: "BotApiCallIntended", callId: "c1", method: "sendMessage", params: {} },
      { _tag: "BotApiCallIntended", callId: "c2", method: "sendMessage", params: {} },
      { _tag: "BotApiCallSucceeded", callId: "c1", result: {} }
    ])
    expect([...state.pendingCalls.keys()]).toEqual(["c2"])
  })

  it("replays deterministically: the same inputs over the same events decide the same events", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: 1, max: 20 }), fc.string()), { maxLength: 30 }), async (updates) => {
        const run = async () => {
          let state = fold([registered])
          const events: DomainEvent[] = []
          for (const [i, [id, body]] of updates.entries()) {
            const input: BotInput = { _tag: "HandleUpdate", inboxId: `${i + 1}-0`, update: text(id, body), at }
            const es = await decider.decide(input, state)
            events.push(...es)
            state = fold(es, state)
          }
          return { events, state }
        }
        const a = await run()
        const b = await run()
        expect(b.events).toEqual(a.events)
        // each distinct update_id is handled once, however often it is delivered
        expect(a.state.updatesHandled).toBe(new Set(updates.map(([id]) => id)).size)
        expect(fold(a.events, fold([registered]))).toEqual(a.state)
      })
    )
  })
})

describe("snapshots of the state", () => {
  it("round-trip through JSON: the bot-level part in the snapshot, the entries beside it", () => {
    const state = fold([
      registered,
      received("1-0", 1, "a"),
      { _tag: "UserSeen", userId: 99, firstName: "Ann", at },
      { _tag: "SessionChanged", key: "k", patch: { a: 1 } },
      { _tag: "BotApiCallIntended", callId: "c", method: "sendMessage", params: {} }
    ])
    const json = JSON.parse(JSON.stringify(encodeCore(state)))
    // the bot-level part knows nothing of users and sessions: its size does not grow with them
    expect(JSON.stringify(json)).not.toContain("Ann")
    const core = decodeCore(SNAPSHOT_SCHEMA_VERSION, json)!
    expect(core.entries.complete).toBe(false)
    expect(core.entries.isLoaded("u:99")).toBe(false)
    const back = { ...core, entries: core.entries.withLoaded([...state.entries.values()]) }
    expect(encodeState(back)).toEqual(encodeState(state))
    expect(userOf(back, 99)?.firstName).toBe("Ann")
    expect(back.pendingCalls.get("c")).toBe("sendMessage")
    expect(hasSeen(back.seenUpdates, 1, isoToMs(at))).toBe(true)
  })

  it("are ignored when of another schema version or malformed, so the bot is rebuilt from events", () => {
    const json = JSON.parse(JSON.stringify(encodeCore(fold([registered]))))
    expect(decodeCore(SNAPSHOT_SCHEMA_VERSION + 1, json)).toBeNull()
    expect(decodeCore(SNAPSHOT_SCHEMA_VERSION, { ...json, status: "dancing" })).toBeNull()
  })
})

describe("isoToMs", () => {
  it("agrees with Date.parse on ISO instants", () => {
    fc.assert(
      fc.property(fc.date({ min: new Date("1970-01-01"), max: new Date("2200-01-01"), noInvalidDate: true }), (d) => {
        expect(isoToMs(d.toISOString())).toBe(d.getTime())
      })
    )
    expect(isoToMs("2026-01-01T12:00:00+02:00")).toBe(Date.parse("2026-01-01T12:00:00+02:00"))
    expect(isoToMs("yesterday")).toBeNaN()
  })
})
