import { Either, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { declaredMessagesOf, notifyText, payloadSchemaOf } from "../../../src/telegram/bots/botMessagesSchema.pure.js"
import { BuiltinConfigSchema } from "../../../src/telegram/bots/configSchema.pure.js"
import { fillPayload } from "../../../src/telegram/bots/interactions.pure.js"

const check = (config: unknown) => Schema.decodeUnknownEither(BuiltinConfigSchema, { errors: "all" })(config)

describe("the built-in kind's declared messages", () => {
  it("builds the payload schema from the declared fields: types, optional fields, no undeclared ones", () => {
    const d = declaredMessagesOf({ messages: { "order.shipped": { fields: { userId: "integer", orderId: "string", note: "string?", paid: "boolean" } } } }).get("order.shipped")!
    const decode = Schema.decodeUnknownEither(payloadSchemaOf(d), { onExcessProperty: "error" })
    expect(Either.isRight(decode({ userId: 1, orderId: "A", paid: true }))).toBe(true)
    expect(Either.isRight(decode({ userId: 1, orderId: "A", paid: true, note: "x" }))).toBe(true)
    expect(Either.isLeft(decode({ userId: 1.5, orderId: "A", paid: true }))).toBe(true)
    expect(Either.isLeft(decode({ userId: 1, paid: true }))).toBe(true)
    expect(Either.isLeft(decode({ userId: 1, orderId: "A", paid: true, extra: 1 }))).toBe(true)
    expect(declaredMessagesOf({}).size).toBe(0)
    expect(declaredMessagesOf({ messages: "nonsense" }).size).toBe(0)
  })

  it("is checked with the rest of the config, each problem at its path", () => {
    expect(Either.isRight(check({ messages: { ping: { fields: {} } } }))).toBe(true)
    const bad = check({ messages: { x: { fields: { x: "date" } }, ok: { fields: { chat: "string" }, notify: { chat: "chat", text: "hi" } } } })
    expect(Either.isLeft(bad)).toBe(true)
    const text = String(Either.isLeft(bad) ? bad.left : "")
    expect(text).toMatch(/Expected "string", actual "date"/)
    expect(text).toMatch(/must name a field of type integer/)
    expect(String(Either.flip(check({ messages: { "1bad": { fields: {} } } })).pipe(Either.getOrElse(() => "")))).toMatch(/a message name is 1 to 64/)
    const button = check({ menus: { m: { text: "t", buttons: [[{ text: "b", send: { to: "crm_bot", name: "lead", payload: { userId: "{userId}" } } }]] } } })
    expect(Either.isRight(button)).toBe(true)
    expect(Either.isLeft(check({ menus: { m: { text: "t", buttons: [[{ text: "b", send: { to: "crm bot", name: "lead" } }]] } } }))).toBe(true)
  })

  it("fills notify texts and button payloads", () => {
    expect(notifyText("Order {orderId} for {who} ({missing})", { orderId: "A-1", who: 5 })).toBe("Order A-1 for 5 ({missing})")
    expect(fillPayload({ userId: "{userId}", chat: "{chatId}", ref: "u-{userId}", n: 3, f: false }, { userId: 7, chatId: -9 })).toEqual({ userId: 7, chat: -9, ref: "u-7", n: 3, f: false })
  })
})
