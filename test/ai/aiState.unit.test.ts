import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { aiEntryWrites } from "../../src/ai/aiFold.pure.js"
import type { AiEvent } from "../../src/ai/aiFold.pure.js"
import { parseAiConfig } from "../../src/ai/aiConfig.pure.js"
import { MAX_SUMMARY_CHARS, MAX_TURN_CHARS, MAX_TURNS, overBudget, readConversation, readUsage, rollSummary, tokensOn } from "../../src/ai/aiState.pure.js"
import { aiStatusLine, aiStatusOf } from "../../src/ai/aiStatus.pure.js"
import { fallbackReasonOf, httpFailure, unreachable } from "../../src/ai/modelOutcome.pure.js"
import { ApiKeyUnsealable, makeSecretBox, sealApiKeyInPatch } from "../../src/ai/secretBox.js"
import type { Json } from "../../src/actors/decider/mergePatch.js"

/** Folds AI events over a plain map of entries, as the decider's evolve does. */
const foldAi = (events: ReadonlyArray<AiEvent>) => {
  const entries = new Map<string, Json>()
  for (const e of events) for (const [k, v] of aiEntryWrites(e, (key) => entries.get(key))) entries.set(k, v)
  return entries
}

const replied = (chatId: number, user: string, assistant: string, day = "2026-12-04", tokens = 10): AiEvent => ({
  _tag: "AiReplied", chatId, userId: 7, updateId: 1, model: "m", day, promptTokens: tokens, completionTokens: 0, user, assistant, at: `${day}T10:00:00.000Z`
})

describe("AI memory and budgets (pure folds)", () => {
  it("keeps a chat's memory bounded whatever is recorded: turns, their length, the summary", () => {
    const event = fc.oneof(
      fc.tuple(fc.string({ maxLength: 3000 }), fc.string({ maxLength: 3000 })).map(([u, a]) => replied(1, u, a)),
      fc.tuple(fc.string({ maxLength: 5000 }), fc.integer({ min: -2, max: 80 })).map(([summary, dropped]): AiEvent => ({ _tag: "ConversationSummarized", chatId: 1, summary, dropped }))
    )
    fc.assert(
      fc.property(fc.array(event, { maxLength: 120 }), (events) => {
        const c = readConversation(foldAi(events).get("c:1"))
        expect(c.turns.length).toBeLessThanOrEqual(MAX_TURNS)
        for (const t of c.turns) expect(Math.max(t.user.length, t.assistant.length)).toBeLessThanOrEqual(MAX_TURN_CHARS)
        expect(c.summary.length).toBeLessThanOrEqual(MAX_SUMMARY_CHARS)
      })
    )
  })

  it("rolls the oldest turns into a summary that keeps the newest and stays within its bound", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 2000 }), fc.array(fc.record({ user: fc.string({ maxLength: 300 }), assistant: fc.string({ maxLength: 300 }) }), { minLength: 1, maxLength: 20 }), (old, turns) => {
        const s = rollSummary(old, turns)
        expect(s.length).toBeLessThanOrEqual(MAX_SUMMARY_CHARS)
        // the newest dropped turn is kept (the summary is cut from the front)
        const newest = rollSummary("", turns.slice(-1))
        if (newest.length < MAX_SUMMARY_CHARS) expect(s.endsWith(newest)).toBe(true)
      })
    )
  })

  it("counts tokens per UTC day for the bot and the user; a new day starts from zero", () => {
    const entries = foldAi([replied(1, "a", "b", "2026-12-04", 30), replied(2, "c", "d", "2026-12-04", 20), replied(1, "e", "f", "2026-12-05", 5)])
    expect(tokensOn(readUsage(entries.get("ai:bot"), "2026-12-05"), "2026-12-05")).toBe(5)
    expect(readUsage(entries.get("ai:u:7"), "2026-12-05")).toMatchObject({ replies: 3, tokens: 5 })
    expect(overBudget({ bot: 50, user: null }, { bot: 50, user: 0 })).toBe("bot")
    expect(overBudget({ bot: null, user: 10 }, { bot: 500, user: 10 })).toBe("user")
    expect(overBudget({ bot: 51, user: 11 }, { bot: 50, user: 10 })).toBeNull()
  })

  it("shows replies, today's tokens and fallbacks in status", () => {
    const entries = foldAi([
      replied(1, "a", "b", "2026-12-04", 30),
      { _tag: "AiFallbackUsed", chatId: 1, userId: 7, reason: "timeout", day: "2026-12-04", at: "2026-12-04T11:00:00.000Z" }
    ])
    const s = aiStatusOf((k) => entries.get(k), "2026-12-04")!
    expect(s).toEqual({ replies: 1, tokensToday: 30, day: "2026-12-04", fallbacks: { timeout: 1 }, lastFallback: { reason: "timeout", at: "2026-12-04T11:00:00.000Z" } })
    expect(aiStatusLine(s)).toBe("replies 1, tokens today 30, fallbacks timeout 1 (last: timeout at 2026-12-04T11:00:00.000Z)")
    expect(aiStatusOf(() => undefined, "2026-12-04")).toBeNull()
  })

  it("reads the ai config leniently, with bounded defaults", () => {
    expect(parseAiConfig(undefined)).toBeNull()
    expect(parseAiConfig({ enabled: false, model: "x" })).toBeNull()
    expect(parseAiConfig({ memoryTurns: 9999, timeoutMs: -1, dailyTokens: { bot: 0, user: 100 } })).toMatchObject({ model: "botfleet-stub", memoryTurns: 8, timeoutMs: 15_000, dailyTokens: { bot: null, user: 100 } })
  })
})

describe("model failures and API keys", () => {
  it("maps failures to fallback reasons and never lets a key into a description", () => {
    expect(fallbackReasonOf(httpFailure(401, "bad key sk-abcdefghijklmnop").errorCode)).toBe("refused")
    expect(httpFailure(401, "bad key sk-abcdefghijklmnop").errorCode).not.toBe(401) // 401 would stop the bot as a revoked Telegram token
    expect(httpFailure(401, "bad key sk-abcdefghijklmnop").description).not.toContain("sk-abcdefghijklmnop")
    expect(unreachable("Bearer sk-secret123456789 refused").description).not.toContain("secret123")
    expect([408, 429, 500, 503, 0].map(fallbackReasonOf)).toEqual(["timeout", "rate_limited", "unavailable", "unavailable", "not_configured"])
  })

  it("seals a clear API key in a config patch, bound to the bot; another bot's sealed key does not open", () => {
    const box = makeSecretBox(randomBytes(32))
    const patch = sealApiKeyInPatch({ ai: { apiKey: "sk-live-123456789", model: "m" }, greeting: "hi" }, "bot-a", box) as { ai: { apiKey: string; model: string }; greeting: string }
    expect(JSON.stringify(patch)).not.toContain("sk-live-123456789")
    expect(patch.ai.model).toBe("m")
    expect(patch.greeting).toBe("hi")
    expect(Redacted.value(box.open("bot-a", patch.ai.apiKey) as Redacted.Redacted<string>)).toBe("sk-live-123456789")
    expect(box.open("bot-b", patch.ai.apiKey)).toBeInstanceOf(ApiKeyUnsealable)
    // already sealed, removed, or absent: unchanged
    expect(sealApiKeyInPatch(patch, "bot-a", box)).toBe(patch)
    const removal = { ai: { apiKey: null } }
    expect(sealApiKeyInPatch(removal, "bot-a", box)).toBe(removal)
  })
})
