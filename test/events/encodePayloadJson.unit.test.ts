import { Either } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { encodePayload, encodePayloadJson } from "../../src/events/schema/registry.js"
import type { DomainEvent } from "../../src/events/schema/envelope.js"
import { updateReceived, userSeen } from "../support/events.js"

/** What the append path stored before it cut `_tag` from the text: the JSON of the encoded payload without it. */
const storedBefore = (data: unknown) => Either.map(encodePayload(data as DomainEvent), (p) => ({ type: p.type, schemaVersion: p.schemaVersion, json: JSON.stringify(p.json) }))

describe("encodePayloadJson", () => {
  it("writes byte for byte the JSON the log stored before, for any valid payload", () => {
    const arbitraryEvent = fc.oneof(
      fc.record({ _tag: fc.constant("UserSeen"), userId: fc.integer(), firstName: fc.string(), languageCode: fc.option(fc.string(), { nil: undefined }), at: fc.constant("2026-01-01T00:00:00Z") }, { requiredKeys: ["_tag", "userId", "firstName", "at"] }),
      fc.record({ _tag: fc.constant("SessionChanged"), key: fc.string(), patch: fc.jsonValue() }),
      fc.record({ _tag: fc.constant("ReplySent"), chatId: fc.integer(), messageId: fc.nat(), text: fc.string({ unit: "grapheme" }), at: fc.constant("2026-01-01T00:00:00Z") }),
      fc.record({ _tag: fc.constant("LegacyRecordImported"), importId: fc.string(), collection: fc.string(), key: fc.string({ unit: "grapheme" }), record: fc.jsonValue(), source: fc.string(), checksum: fc.string() })
    )
    fc.assert(
      fc.property(arbitraryEvent, (data) => {
        expect(encodePayloadJson(data as DomainEvent)).toEqual(storedBefore(data))
      })
    )
    for (const data of [updateReceived(1), userSeen(2, "Зоя 🐱"), { _tag: "BotRegistered", ownerId: "o", name: "n", kind: "builtin", mode: "polling" }]) {
      expect(encodePayloadJson(data as DomainEvent)).toEqual(storedBefore(data))
    }
  })

  it("drops properties the schema does not know, as the encoder always did", () => {
    const data = { ...userSeen(3), password: "hunter2" } as unknown as DomainEvent
    const r = Either.getOrThrow(encodePayloadJson(data))
    expect(JSON.parse(r.json)).toEqual({ userId: 3, firstName: "Ada", at: "2026-11-26T10:00:00.000Z" })
  })

  it("refuses an unknown type or a payload that does not fit its schema, naming why", () => {
    const unknown = encodePayloadJson({ _tag: "Nope" } as unknown as DomainEvent)
    expect(Either.isLeft(unknown) && unknown.left.reason).toBe("UnknownType")
    const bad = encodePayloadJson({ _tag: "UserSeen", userId: "x", firstName: "A", at: "t" } as unknown as DomainEvent)
    expect(Either.isLeft(bad) && bad.left).toMatchObject({ reason: "SchemaMismatch" })
    expect(bad).toEqual(storedBefore({ _tag: "UserSeen", userId: "x", firstName: "A", at: "t" }))
  })
})
