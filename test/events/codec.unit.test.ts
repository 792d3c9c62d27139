import { Either } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { decodeFields, encodeNewEvent, fieldsToArgs, argsToFields, toFields } from "../../src/events/codec.js"
import { partitionOf, redisKeys } from "../../src/events/partition.js"
import type { DomainEvent } from "../../src/events/schema/envelope.js"
import { newEvent, updateReceived } from "../support/events.js"

const encode = (data: DomainEvent) => Either.getOrThrow(encodeNewEvent("bot-1", newEvent(data), () => "id-1"))

describe("codec", () => {
  it("writes fields a person can read with XRANGE: ids, type and versions plain, data as JSON without the tag", () => {
    const fields = toFields("bot-1", 7, encode(updateReceived(42)))
    expect(fields).toMatchObject({ eventId: "id-1", botId: "bot-1", v: "7", type: "UpdateReceived", schemaVersion: "1", actor: "system" })
    const data = JSON.parse(fields.data)
    expect(data._tag).toBeUndefined()
    expect(data.updateId).toBe(42)
    expect(argsToFields(fieldsToArgs(fields))).toEqual(fields)
  })

  it("reads a v1 BotRegistered as v2: kind defaults to the built-in one", () => {
    const stored = { ...toFields("bot-1", 1, encode({ _tag: "UserBlockedBot", userId: 1, at: "2026-01-01T00:00:00Z" })), type: "BotRegistered", schemaVersion: "1", data: JSON.stringify({ ownerId: "o1", name: "Old bot" }) }
    const e = Either.getOrThrow(decodeFields(stored))
    expect(e.schemaVersion).toBe(2)
    expect(e.data).toEqual({ _tag: "BotRegistered", ownerId: "o1", name: "Old bot", kind: "builtin", mode: "polling" })
  })

  it("names what is wrong with a stored entry", () => {
    const good = toFields("bot-1", 1, encode(updateReceived(1)))
    const cases: Array<[Record<string, string>, string]> = [
      [{ ...good, data: "{oops" }, "MalformedJson"],
      [{ ...good, type: "Nope" }, "UnknownType"],
      [{ ...good, schemaVersion: "9" }, "UnknownSchemaVersion"],
      [{ ...good, data: JSON.stringify({ updateId: "x" }) }, "SchemaMismatch"],
      [{ ...good, v: "0" }, "SchemaMismatch"],
      [Object.fromEntries(Object.entries(good).filter(([k]) => k !== "actor")), "MissingField"]
    ]
    for (const [fields, reason] of cases) {
      const r = decodeFields(fields)
      expect(Either.isLeft(r) && r.left.reason).toBe(reason)
    }
  })

  it("round-trips any valid payload", () => {
    const arbitraryEvent = fc.oneof(
      fc.record({ _tag: fc.constant("UserSeen" as const), userId: fc.integer(), firstName: fc.string(), languageCode: fc.option(fc.string(), { nil: undefined }), at: fc.constant("2026-01-01T00:00:00Z") }, { requiredKeys: ["_tag", "userId", "firstName", "at"] }),
      fc.record({ _tag: fc.constant("SessionChanged" as const), key: fc.string(), patch: fc.jsonValue() }),
      fc.record({ _tag: fc.constant("ReplySent" as const), chatId: fc.integer(), messageId: fc.nat(), text: fc.string({ unit: "grapheme" }), at: fc.constant("2026-01-01T00:00:00Z") })
    )
    fc.assert(
      fc.property(arbitraryEvent, fc.integer({ min: 1, max: 1_000_000 }), (data, version) => {
        const fields = toFields("bot-x", version, encode(data as DomainEvent))
        const back = Either.getOrThrow(decodeFields(fields))
        expect(back.version).toBe(version)
        expect(JSON.parse(JSON.stringify(back.data))).toEqual(JSON.parse(JSON.stringify(data)))
      })
    )
  })
})

describe("partitioning", () => {
  it("is stable and spreads bots over every partition", () => {
    expect(partitionOf("bot-1", 16)).toBe(partitionOf("bot-1", 16))
    const seen = new Set(Array.from({ length: 2000 }, (_, i) => partitionOf(`bot-${i}`, 16)))
    expect(seen.size).toBe(16)
  })

  it("hash-tags every key of a partition alike, so one Lua call can touch them in Redis Cluster", () => {
    const k = redisKeys("bf", 7)
    const keys = [k.stream("b1"), k.log, k.inbox("b1"), k.lease("b1"), k.snapshot("b1"), k.deadLetter]
    expect(keys.every((key) => key.startsWith("bf:{p07}:"))).toBe(true)
    expect(k.stream("b1")).toBe("bf:{p07}:bot:b1")
  })
})
