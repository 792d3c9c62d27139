import { describe, expect, it } from "vitest"
import { unreadableReason } from "../../src/actors/supervisor.js"
import { InvalidEvent, LogUnavailable } from "../../src/events/errors.js"

describe("unreadableReason: a stream this version cannot read, told apart from other failures", () => {
  it("an event of an unknown schema version or type (written by a newer node)", () => {
    const newer = new InvalidEvent({ reason: "UnknownSchemaVersion", detail: "BotStopped has versions 1..1, not 2", type: "BotStopped", botId: "b" })
    expect(unreadableReason(newer)).toContain("UnknownSchemaVersion")
    expect(unreadableReason(new InvalidEvent({ reason: "UnknownType", detail: "no event type named \"BotMoved\"" }))).toContain("UnknownType")
  })

  it("the same error as it crosses from a worker thread ({ name, message } only)", () => {
    const crossed = { name: "InvalidEvent", message: "invalid event BotStopped for bot b: UnknownSchemaVersion: BotStopped has versions 1..1, not 2" }
    expect(unreadableReason(crossed)).toBe(crossed.message)
  })

  it("not a malformed event, an outage or a bug (those are crashes, retried within the budget)", () => {
    expect(unreadableReason(new InvalidEvent({ reason: "SchemaMismatch", detail: "x" }))).toBeNull()
    expect(unreadableReason(new LogUnavailable({ operation: "read", cause: new Error("down") }))).toBeNull()
    expect(unreadableReason(new Error("handler threw"))).toBeNull()
    expect(unreadableReason(null)).toBeNull()
  })
})
