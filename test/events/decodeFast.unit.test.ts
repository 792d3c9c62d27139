import { Either, ParseResult, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { decodeFields, encodeNewEvent, toFields, withPosition } from "../../src/events/codec.js"
import type { EventFields } from "../../src/events/codec.js"
import type { DomainEvent, EventEnvelope } from "../../src/events/schema/envelope.js"
import { decodePayload, registry } from "../../src/events/schema/registry.js"
import type { PayloadProblem } from "../../src/events/schema/registry.js"
import { newEvent, updateReceived, userSeen } from "../support/events.js"

/*
 * decodeFields tags the payload it parsed in place and withPosition spells its fields out (both
 * for activation speed). These pin that the results are the ones the straightforward code gave.
 */

const stored = (data: DomainEvent, version = 3): EventFields =>
  toFields("bot-1", version, Either.getOrThrow(encodeNewEvent("bot-1", newEvent(data), () => `id-${version}`)))

/** The decode as it was written before: copy the payload with its tag, then the schema. */
const referenceDecode = (type: keyof typeof registry, schemaVersion: number, json: Record<string, unknown>): Either.Either<unknown, PayloadProblem> => {
  const spec = registry[type]
  let payload = json
  for (let v = schemaVersion; v < spec.current; v++) payload = spec.upcasters[v]!(payload)
  return Schema.decodeUnknownEither(spec.schema)({ ...payload, _tag: type }).pipe(
    Either.mapLeft((e) => ({ reason: "SchemaMismatch" as const, detail: ParseResult.TreeFormatter.formatErrorSync(e) }))
  )
}

const samples: DomainEvent[] = [
  { _tag: "SessionChanged", key: "chat:1", patch: { n: 1, note: "a session value", nested: { a: [1, 2, null] } } },
  { _tag: "SessionChanged", key: "chat:2", patch: null },
  updateReceived(7),
  userSeen(42, "Grace"),
  { _tag: "UserSeen", userId: 43, firstName: "Ada", lastName: "Lovelace", username: "ada", languageCode: "en", at: "2026-11-26T10:00:00.000Z" },
  { _tag: "BotStarted", nodeId: "node-a", fence: 3 },
  { _tag: "ReplySent", chatId: 5, messageId: 9, text: "héllo 👋", at: "2026-11-26T10:00:00.000Z" }
]

describe("decoding a stored event", () => {
  it("gives the same data, key for key and in the same order, as copying the payload before the schema", () => {
    for (const data of samples) {
      const f = stored(data)
      const decoded = Either.getOrThrow(decodeFields(f))
      const reference = Either.getOrThrow(referenceDecode(data._tag, Number(f.schemaVersion), JSON.parse(f.data)))
      expect(JSON.stringify(decoded.data)).toBe(JSON.stringify(reference))
      expect(decoded.data).toEqual(reference)
    }
  })

  it("upcasts old versions exactly as before (v1 BotRegistered and UserSeen)", () => {
    const cases: Array<[keyof typeof registry, Record<string, unknown>]> = [
      ["BotRegistered", { ownerId: "o1", name: "Old bot" }],
      ["BotRegistered", { ownerId: "o1", name: "Old bot", mode: "webhook", config: { a: 1 } }],
      ["UserSeen", { userId: 5, name: "Ada King Lovelace", at: "2026-01-01T00:00:00Z" }],
      ["UserSeen", { userId: 6, name: "Grace", at: "2026-01-01T00:00:00Z" }]
    ]
    for (const [type, json] of cases) {
      const f = { ...stored(userSeen(1)), type, schemaVersion: "1", data: JSON.stringify(json) }
      const decoded = Either.getOrThrow(decodeFields(f))
      const reference = Either.getOrThrow(referenceDecode(type, 1, json))
      expect(decoded.schemaVersion).toBe(2)
      expect(JSON.stringify(decoded.data)).toBe(JSON.stringify(reference))
    }
  })

  it("keeps the envelope's type over a stray _tag in the stored JSON, drops unknown keys, and a __proto__ key changes no prototype", () => {
    const f = { ...stored(userSeen(1)), data: '{"_tag":"BotRemoved","__proto__":{"polluted":true},"userId":1,"firstName":"Ada","at":"2026-01-01T00:00:00Z","extra":1}' }
    const decoded = Either.getOrThrow(decodeFields(f))
    expect(decoded.data).toEqual({ _tag: "UserSeen", userId: 1, firstName: "Ada", at: "2026-01-01T00:00:00Z" })
    expect(Object.getPrototypeOf(decoded.data)).toBe(Object.prototype)
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined()
  })

  it("still refuses a payload that does not match its schema, with the same reason and detail", () => {
    const json = { userId: "not a number", firstName: "Ada", at: "2026-01-01T00:00:00Z" }
    const r = decodeFields({ ...stored(userSeen(1)), schemaVersion: "2", data: JSON.stringify(json) })
    const ref = referenceDecode("UserSeen", 2, json)
    expect(Either.isLeft(r) && Either.isLeft(ref)).toBe(true)
    if (Either.isLeft(r) && Either.isLeft(ref)) {
      expect(r.left.reason).toBe("SchemaMismatch")
      expect(r.left.detail).toBe(ref.left.detail)
    }
  })

  it("leaves the caller's object alone unless the caller says it owns it", () => {
    const json = { userId: 1, firstName: "Ada", at: "2026-01-01T00:00:00Z" }
    const copy = structuredClone(json)
    expect(Either.isRight(decodePayload("UserSeen", 2, json))).toBe(true)
    expect(json).toEqual(copy)
    const old = { ownerId: "o1", name: "Old bot" }
    expect(Either.isRight(decodePayload("BotRegistered", 1, old, { owned: true }))).toBe(true)
    expect(old).toEqual({ ownerId: "o1", name: "Old bot" })
  })

  it("places an envelope at its position with every field the spread copy had", () => {
    const env: EventEnvelope = Either.getOrThrow(decodeFields(stored(updateReceived(3), 11)))
    const placed = withPosition(env, "1700000000000-0", 4, "2023-11-14T22:13:20.000Z")
    expect(placed).toStrictEqual({ ...env, position: "1700000000000-0", partition: 4, recordedAt: "2023-11-14T22:13:20.000Z" })
    expect(Object.keys(placed)).toEqual([...Object.keys(env), "position", "partition", "recordedAt"])
  })
})
