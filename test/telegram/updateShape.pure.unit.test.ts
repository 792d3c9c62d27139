import { describe, expect, it } from "vitest"
import { updateProblem } from "../../src/telegram/updateShape.pure.js"
import { secretMatches, webhookSecretFor } from "../../src/telegram/webhookSecret.js"

describe("update shape", () => {
  it("accepts updates of any kind, including ones newer than this code", () => {
    expect(updateProblem({ update_id: 1, message: { message_id: 1, chat: { id: 5 } } })).toBeNull()
    expect(updateProblem({ update_id: 2, callback_query: { id: "x" } })).toBeNull()
    expect(updateProblem({ update_id: 3, some_future_kind: {} })).toBeNull()
  })
  it("says what is wrong with anything else", () => {
    expect(updateProblem([])).toBe("an update must be a JSON object")
    expect(updateProblem({ update_id: -1, message: {} })).toBe("update_id must be a non-negative integer")
    expect(updateProblem({ update_id: 1 })).toMatch(/no content/)
    expect(updateProblem({ update_id: 1, message: {}, callback_query: {} })).toMatch(/exactly one field/)
    expect(updateProblem({ update_id: 1, message: "hi" })).toBe("message must be an object")
    expect(updateProblem({ update_id: 1, message: { message_id: 1 } })).toBe("message.chat.id must be a number")
  })
})

describe("webhook secrets", () => {
  const key = new Uint8Array(32).fill(7)
  it("derives a distinct, Telegram-compatible secret per bot", () => {
    const a = webhookSecretFor(key, "a")
    expect(a).toMatch(/^[A-Za-z0-9_-]{1,256}$/)
    expect(a).not.toBe(webhookSecretFor(key, "b"))
    expect(a).toBe(webhookSecretFor(key, "a"))
  })
  it("matches only the exact secret", () => {
    const a = webhookSecretFor(key, "a")
    expect(secretMatches(a, a)).toBe(true)
    expect(secretMatches(a.slice(0, -1), a)).toBe(false)
    expect(secretMatches(undefined, a)).toBe(false)
    expect(secretMatches("", "")).toBe(true)
  })
})
