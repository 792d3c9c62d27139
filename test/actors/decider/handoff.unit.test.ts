import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { handoffGreeting, handoffOf, handoffUpdate, handoffUpdateId, isIdempotentMethod, parseHandoffRequest } from "../../../src/actors/decider/handoff.js"

describe("handoff (pure parts)", () => {
  it("gives each handoff id one negative, safe update_id, the same on every delivery (property)", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 200 }), (id) => {
        const n = handoffUpdateId(id)
        return n < 0 && Number.isSafeInteger(n) && n === handoffUpdateId(id)
      })
    )
    expect(handoffUpdateId("a/1:0")).not.toBe(handoffUpdateId("a/1:1"))
  })

  it("refuses bad requests with the field at fault, and reads back what it delivers", () => {
    expect(parseHandoffRequest({ to: "me", userId: 1, chatId: 1, context: "x" }, "me")).toMatch(/^to: a bot cannot hand a user to itself/)
    expect(parseHandoffRequest({ to: "b", userId: "1", chatId: 1, context: "x" }, "a")).toMatch(/^userId/)
    expect(parseHandoffRequest({ to: "b", userId: 1, chatId: 1, context: "x".repeat(2049) }, "a")).toMatch(/^context/)
    expect(parseHandoffRequest({ to: "no space", userId: 1, chatId: 1, context: "x" }, "a")).toMatch(/^to:/)
    const h = { to: "b", userId: 1, chatId: 1, context: "wants a quote", firstName: "Ann", handoffId: "a/5:0", from: "a", fromOwner: "acme" }
    expect(handoffOf(handoffUpdate(h))).toEqual(h)
    expect(handoffOf({ update_id: 1, message: {} })).toBeNull()
    expect(isIdempotentMethod("botfleet.handoff")).toBe(true)
    expect(isIdempotentMethod("sendMessage")).toBe(false)
    expect(handoffGreeting("Hi {name}, {from}: {context}", h)).toBe("Hi Ann, a: wants a quote")
  })
})
