import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { BOT_MESSAGE_METHOD, botMessageOf, botMessageUpdate, MAX_PAYLOAD_CHARS, parseBotMessageRequest } from "../../../src/actors/decider/botMessage.js"
import { isIdempotentMethod } from "../../../src/actors/decider/handoff.js"
import { TAG_FIELD, tagProblem, tagRequestOf, tagUpdate } from "../../../src/actors/decider/userTags.js"

describe("bot messages (pure)", () => {
  it("checks a call's params, naming what is wrong", () => {
    expect(parseBotMessageRequest({ to: "crm_bot", name: "lead.scored", payload: { a: 1 } }, "me")).toEqual({ to: "crm_bot", name: "lead.scored", payload: { a: 1 } })
    expect(parseBotMessageRequest({ to: "me", name: "x", payload: null }, "me")).toBe("to: a bot cannot send a message to itself")
    expect(parseBotMessageRequest({ to: "a b", name: "x", payload: null }, "me")).toMatch(/^to:/)
    expect(parseBotMessageRequest({ to: "crm", name: "1x", payload: null }, "me")).toMatch(/^name:/)
    expect(parseBotMessageRequest({ to: "crm", name: "x" }, "me")).toMatch(/^payload: missing/)
    expect(parseBotMessageRequest({ to: "crm", name: "x", payload: "y".repeat(MAX_PAYLOAD_CHARS) }, "me")).toMatch(/more than/)
    expect(parseBotMessageRequest(null, "me")).toMatch(/^to:/)
    // a delivery is idempotent (the target dedupes by message id), so a crash leaves it to be sent again
    expect(isIdempotentMethod(BOT_MESSAGE_METHOD)).toBe(true)
  })

  it("round-trips through the inbox entry with a stable negative update_id (property)", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z][a-z0-9_]{0,20}$/), fc.jsonValue(), fc.nat(), (to, payload, n) => {
        const m = { to: `${to}_bot`, name: "msg", payload: JSON.parse(JSON.stringify(payload)) as unknown, messageId: `src/${n}:0`, from: "src", fromOwner: "acme" }
        const u = botMessageUpdate(m)
        return u.update_id < 0 && u.update_id === botMessageUpdate(m).update_id && JSON.stringify(botMessageOf(JSON.parse(JSON.stringify(u)))) === JSON.stringify(m)
      })
    )
    expect(botMessageOf({ update_id: 1, message: {} })).toBeNull()
    expect(botMessageOf({ update_id: -1, botfleet_message: { messageId: 1 } })).toBeNull()
  })
})

describe("user tags (pure)", () => {
  it("accepts tags as segments read them and refuses the rest", () => {
    expect(tagProblem(42, "vip")).toBeNull()
    expect(tagProblem(42, "hot-lead_2")).toBeNull()
    expect(tagProblem(0, "vip")).toMatch(/positive integer/)
    expect(tagProblem(1.5, "vip")).toMatch(/positive integer/)
    expect(tagProblem(42, "VIP")).toMatch(/lower-case/)
    expect(tagProblem(42, "x".repeat(33))).toMatch(/1 to 32/)
    const u = tagUpdate({ requestId: "r1", userId: 42, tag: "vip", on: true })
    expect(u.update_id).toBeLessThan(0)
    expect(tagRequestOf(u)).toEqual({ requestId: "r1", userId: 42, tag: "vip", on: true })
    expect(tagRequestOf({ update_id: -1, [TAG_FIELD]: { requestId: "r", userId: 42, tag: "BAD", on: true } })).toBeNull()
  })
})
