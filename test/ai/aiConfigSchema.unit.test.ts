import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { checkBotConfig } from "../../src/telegram/bots/configCheck.pure.js"
import { BuiltinConfigSchema } from "../../src/telegram/bots/configSchema.pure.js"

const check = (patch: unknown) => checkBotConfig({ botId: "b", kind: "builtin", current: {}, patch, schema: BuiltinConfigSchema })
const paths = (patch: unknown) => {
  const r = check(patch)
  if (Either.isRight(r)) throw new Error("expected a refusal")
  return r.left.problems.map((p) => `${p.path}: ${p.reason}`)
}

describe("bots configure: the ai section and the persona's traits", () => {
  it("accepts a full AI configuration and persona", () => {
    const ok = check({
      ai: { model: "llama3.2", baseURL: "http://127.0.0.1:11434/v1", apiKey: "sealed:v1:abc", systemPrompt: "Be brief.", memoryTurns: 4, maxReplyTokens: 200, timeoutMs: 30_000, dailyTokens: { bot: 100_000, user: 5_000 }, fallback: "Later." },
      personality: { name: "Sage", tone: "friendly", vocabulary: { hello: "howdy" }, emoji: "lots", formality: "casual", language: "de", description: "Calm.", adapt: true }
    })
    expect(Either.isRight(ok)).toBe(true)
  })

  it("refuses a bad value at its path, with the reason, and a typo as an unknown key", () => {
    expect(paths({ ai: { baseURL: "ftp://x", timeoutMs: 5, memoryTurns: 1.5, dailyTokens: { bot: 0 } } })).toEqual([
      "ai.baseURL: must be an http(s) URL, e.g. http://127.0.0.1:11434/v1",
      "ai.memoryTurns: must be a whole number",
      "ai.timeoutMs: must be from 100 to 120000",
      "ai.dailyTokens.bot: must be from 1 to 1000000000"
    ])
    expect(paths({ ai: { modle: "x" } })).toEqual(["ai.modle: is not a setting of this bot kind (a typo?)"])
    expect(paths({ personality: { emoji: "many", language: "english", vocabulary: { "a$b": "x" } } })).toEqual(
      expect.arrayContaining([expect.stringMatching(/^personality\.emoji: /), "personality.language: must be a two-letter language code (ISO 639-1), e.g. en", expect.stringMatching(/^personality\.vocabulary\.a\$b: a vocabulary word/)])
    )
  })
})
