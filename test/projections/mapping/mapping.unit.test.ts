import { Either } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { decodeFields, toFields, withPosition } from "../../../src/events/codec.js"
import type { DomainEvent } from "../../../src/events/schema/catalogue.js"
import { encodePayload } from "../../../src/events/schema/registry.js"
import { actorKind, auditSummary, redactText } from "../../../src/projections/mapping/audit.js"
import { mapBatch } from "../../../src/projections/mapping/mapBatch.js"
import { comparePositions } from "../../../src/projections/mapping/positions.js"
import type { ProjectionInput } from "../../../src/projections/mapping/rows.js"
import { epochMs, utcDay } from "../../../src/events/schema/time.js"

const input = (botId: string, version: number, data: DomainEvent, occurredAt = "2026-01-01T00:00:00Z"): ProjectionInput => {
  const p = Either.getOrThrow(encodePayload(data))
  const raw = toFields(botId, version, {
    eventId: `e${version}`, type: p.type, schemaVersion: p.schemaVersion, occurredAt, correlationId: "c", causationId: "", actor: "owner:1", data: JSON.stringify(p.json)
  })
  return { event: withPosition(Either.getOrThrow(decodeFields(raw)), String(version), 0), raw }
}

describe("instants", () => {
  it("agree with Date for any instant, in UTC or with an offset", () => {
    fc.assert(
      fc.property(fc.date({ min: new Date("1970-01-01"), max: new Date("2100-01-01"), noInvalidDate: true }), fc.integer({ min: -12 * 60, max: 14 * 60 }), (d, offsetMin) => {
        const ms = d.getTime()
        expect(epochMs(d.toISOString())).toBe(ms)
        expect(utcDay(ms)).toBe(d.toISOString().slice(0, 10))
        const local = new Date(ms + offsetMin * 60_000).toISOString().slice(0, 23)
        const sign = offsetMin < 0 ? "-" : "+"
        const abs = Math.abs(offsetMin)
        const zone = `${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`
        expect(epochMs(local + zone)).toBe(ms)
      })
    )
  })

  it("refuses what a timestamptz cast might read differently", () => {
    for (const bad of ["2026-02-30T00:00:00Z", "2026-01-01 00:00:00", "yesterday", "2026-01-01T00:00:00", "2026-13-01T00:00:00Z"]) {
      expect(epochMs(bad)).toBeUndefined()
    }
  })
})

describe("positions", () => {
  it("order Redis stream ids and numbers numerically, not as text", () => {
    expect(comparePositions("10-0", "9-5")).toBe(1)
    expect(comparePositions("1700000000000-2", "1700000000000-10")).toBe(-1)
    expect(comparePositions("42", "42")).toBe(0)
    expect(comparePositions("100", "99")).toBe(1)
  })
})

describe("audit summaries", () => {
  it("never carry token ciphertext, config values or token-shaped text", () => {
    const token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    const events: DomainEvent[] = [
      { _tag: "BotRegistered", ownerId: "o", name: "n", kind: "echo", mode: "webhook", tokenCiphertext: "v1:abcdef", config: { apiKey: "sk-secret" } },
      { _tag: "BotTokenRotated", tokenCiphertext: "v1:zzz" },
      { _tag: "BotConfigChanged", patch: { apiKey: "sk-other", nested: { x: 1 } } },
      { _tag: "BotCrashed", nodeId: "n", reason: `fetch https://api.telegram.org/bot${token}/getMe failed`, attempt: 2 },
      { _tag: "BotApiCallFailed", callId: "c", errorCode: 401, description: `Unauthorized ${token}` }
    ]
    const text = JSON.stringify(events.map(auditSummary))
    for (const secret of ["v1:abcdef", "v1:zzz", "sk-secret", "sk-other", token]) expect(text).not.toContain(secret)
    expect(auditSummary(events[2]!)).toEqual({ changedKeys: ["apiKey", "nested"] })
    expect(redactText(`x ${token} y`)).toBe("x [redacted] y")
    expect(actorKind("token:abc")).toBe("token")
    expect(actorKind("weird")).toBe("other")
  })
})

describe("mapBatch", () => {
  it("refuses events of a bot whose owner is unknown, and maps the rest", () => {
    const m = mapBatch(
      [
        input("ghost", 1, { _tag: "BotStarted", nodeId: "n", fence: 1 }),
        input("b", 1, { _tag: "BotRegistered", ownerId: "o1", name: "b", kind: "echo", mode: "sandbox" }),
        input("b", 2, { _tag: "MessageReceived", chatId: 5, chatType: "private", userId: 9, messageId: 1, text: "hi", at: "2026-01-01T23:30:00-02:00" })
      ],
      new Map()
    )
    expect(m.failures).toEqual([{ position: "1", reason: expect.stringContaining("owner is unknown") }])
    expect(m.rows.archive.map((r) => [r.bot_id, r.version, r.owner_id])).toEqual([["b", 1, "o1"], ["b", 2, "o1"]])
    // the message's own time, in UTC, decides its day
    expect(m.rows.dailyCounts).toEqual([{ bot_id: "b", day: "2026-01-02", owner_id: "o1", messages_in: 1, messages_out: 0 }])
    expect(m.rows.audit.map((a) => a.event_type)).toEqual(["BotRegistered"])
  })

  it("takes the owner of earlier bots from the lookup, and refuses malformed instants", () => {
    const m = mapBatch([input("b", 7, { _tag: "BotStopped", nodeId: "n", reason: "drain" }, "not a time")], new Map([["b", "o1"]]))
    expect(m.failures).toEqual([{ position: "7", reason: expect.stringContaining("occurredAt") }])
    const ok = mapBatch([input("b", 7, { _tag: "BotStopped", nodeId: "n", reason: "drain" })], new Map([["b", "o1"]]))
    expect(ok.rows.botUpdates).toEqual([expect.objectContaining({ bot_id: "b", state: "stopped", version: 7 })])
  })
})
