import { Either } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { encodeNewEvent } from "../../src/events/codec.js"
import { OWNER_ID_PATTERN, OwnerIdInvalid, parseOwnerId } from "../../src/events/ownerId.js"
import { isTransientSqlError } from "../../src/projections/errors.js"
import { mapBatch } from "../../src/projections/mapping/mapBatch.js"
import { newEvent } from "../support/events.js"

const SAFE = [..."ABCXYZabcxyz0189_.@-"]
/** Any character: the safe ones often, separators and quotes often, any other code point too. */
const anyChar = fc.oneof(
  fc.constantFrom(...SAFE),
  fc.constantFrom(",", " ", '"', "'", "\\", "{", "}", "[", "]", "\n", "\u0000", ";", ":"),
  fc.integer({ min: 1, max: 0x10ffff }).filter((c) => c < 0xd800 || c > 0xdfff).map((c) => String.fromCodePoint(c))
)

describe("owner ids", () => {
  it("accepts 1 to 64 characters of the safe alphabet, and only those", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...SAFE), { minLength: 1, maxLength: 64 }), (chars) => {
        expect(Either.isRight(parseOwnerId(chars.join("")))).toBe(true)
      }),
      { numRuns: 60 }
    )
    fc.assert(
      fc.property(fc.string({ unit: anyChar, maxLength: 70 }), (s) => {
        const parsed = parseOwnerId(s)
        expect(Either.isRight(parsed)).toBe(OWNER_ID_PATTERN.test(s))
        // nothing a list parser could split, nothing empty, nothing long
        if (Either.isRight(parsed)) expect(/[,\s"'{}[\]\\]/.test(s) || s.length === 0 || s.length > 64).toBe(false)
      }),
      { numRuns: 1000 }
    )
  })

  it("names what is wrong, in a typed error", () => {
    const reason = (v: unknown) => Either.getLeft(parseOwnerId(v)).pipe((o) => (o._tag === "Some" ? o.value.reason : null))
    expect(reason("")).toBe("Empty")
    expect(reason("x".repeat(65))).toBe("TooLong")
    expect(reason("ownerC,ownerB")).toBe("BadCharacter")
    expect(reason("owner B")).toBe("BadCharacter")
    expect(reason("ünïcode")).toBe("BadCharacter")
    expect(reason(42)).toBe("NotText")
    const e = Either.getLeft(parseOwnerId("a,b")).pipe((o) => (o._tag === "Some" ? o.value : null))!
    expect(e).toBeInstanceOf(OwnerIdInvalid)
    expect(e.message).toBe('owner id "a,b" refused: it has a character outside A-Z a-z 0-9 _ . @ - (an owner id is 1 to 64 of A-Z a-z 0-9 _ . @ -)')
    // a huge value is cut in the message
    expect(Either.getLeft(parseOwnerId("y".repeat(10_000))).pipe((o) => (o._tag === "Some" ? o.value.message.length : 0))).toBeLessThan(250)
  })

  it("no BotRegistered with a bad owner id can be encoded for any log, whatever path it comes by", () => {
    const registered = (ownerId: unknown) => newEvent({ _tag: "BotRegistered", ownerId, name: "b", kind: "builtin", mode: "polling" } as never)
    for (const bad of ["", "ownerC,ownerB", "a b", "x".repeat(65)]) {
      const r = encodeNewEvent("bot-1", registered(bad), () => "id")
      expect(Either.isLeft(r) && r.left.reason).toBe("SchemaMismatch")
      expect(Either.isLeft(r) && r.left.message).toContain("owner id")
    }
    expect(Either.isRight(encodeNewEvent("bot-1", registered("owner.x@example-1"), () => "id"))).toBe(true)
  })

  it("the projections refuse a registration with a bad owner id that got into a log anyway, and the bot's later events", () => {
    const at = "2026-01-01T00:00:00Z"
    const input = (version: number, data: Record<string, unknown>) => ({
      event: { eventId: `e${version}`, botId: "b", version, type: data["_tag"], schemaVersion: 1, occurredAt: at, correlationId: "c", causationId: null, actor: "system", data, position: String(version), partition: 0 },
      raw: { schemaVersion: "1", data: JSON.stringify(data) }
    }) as never
    const m = mapBatch([input(1, { _tag: "BotRegistered", ownerId: "", name: "b", kind: "builtin", mode: "polling" }), input(2, { _tag: "BotStarted", nodeId: "n", fence: 1 })], new Map())
    expect(m.failures.map((f) => f.reason)).toEqual([expect.stringContaining('owner id "" refused: it is empty'), expect.stringContaining("owner is unknown")])
    expect(m.rows.archive).toEqual([])
  })

  it("a missing grant is never the data's fault: the projector retries instead of dead-lettering", () => {
    expect(isTransientSqlError({ code: "42501" })).toBe(true)
    expect(isTransientSqlError({ code: "22P02" })).toBe(false)
  })
})
