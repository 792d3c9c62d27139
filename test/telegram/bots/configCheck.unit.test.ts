import { Either, Schema } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { DEMO_BOTS } from "../../../src/runtime/demoFleet.js"
import { checkBotConfig } from "../../../src/telegram/bots/configCheck.pure.js"
import { BuiltinConfigSchema, builtinConfigFields, TONES } from "../../../src/telegram/bots/configSchema.pure.js"

const check = (current: unknown, patch: unknown, schema: Schema.Schema.AnyNoContext | undefined = BuiltinConfigSchema) =>
  checkBotConfig({ botId: "b", kind: "builtin", current, patch, schema })

const problems = (current: unknown, patch: unknown, schema?: Schema.Schema.AnyNoContext) => {
  const r = check(current, patch, schema)
  if (Either.isRight(r)) throw new Error(`expected a refusal, got ${JSON.stringify(r.right)}`)
  return r.left.problems
}

describe("checkBotConfig (built-in kind)", () => {
  it("accepts the demo fleet's configurations and returns the merged result", () => {
    for (const bot of DEMO_BOTS) expect(Either.isRight(check({}, bot.config))).toBe(true)
    expect(Either.getOrThrow(check({ greeting: "hi", personality: { tone: "plain" } }, { personality: { name: "Ann" }, greeting: null }))).toEqual({
      personality: { tone: "plain", name: "Ann" }
    })
  })

  it("refuses with the path and the reason of every problem", () => {
    expect(problems({}, { personality: { tone: "pirat" } })).toEqual([{ path: "personality.tone", reason: 'Expected "plain" | "friendly" | "formal" | "pirate", actual "pirat"' }])
    expect(problems({}, { keywords: [{ match: "hi", reply: "yo" }, { mach: "x", reply: "y" }] })).toEqual([
      { path: "keywords[1].mach", reason: "is not a setting of this bot kind (a typo?)" },
      { path: "keywords[1].match", reason: "is missing" }
    ])
    expect(problems({}, { greeting: "" })).toEqual([{ path: "greeting", reason: "must not be empty" }])
    expect(problems({}, { commands: { Hours: "9-5", help: "x" } })).toEqual([
      { path: "commands.Hours", reason: "a command is 1-32 lower-case letters, digits or _ (e.g. hours)" },
      { path: "commands.help", reason: "start and help are built in: set greeting and help instead" }
    ])
    expect(problems({}, [1, 2])).toEqual([{ path: "", reason: "a config patch must be a JSON object" }])
  })

  it("checks the result, so a junk key recorded earlier must be removed", () => {
    expect(problems({ "personality.tone": "pirate" }, { greeting: "hi" })).toEqual([{ path: "personality.tone", reason: "is not a setting of this bot kind (a typo?)" }])
    expect(Either.isRight(check({ "personality.tone": "pirate" }, { "personality.tone": null }))).toBe(true)
  })

  it("any tone outside the four is refused, any of the four is accepted (property)", () => {
    fc.assert(
      fc.property(fc.string(), (tone) => {
        const r = check({}, { personality: { tone } })
        expect(Either.isRight(r)).toBe((TONES as ReadonlyArray<string>).includes(tone))
      })
    )
  })

  it("is extended by adding fields, with the same checks", () => {
    const Extended = Schema.Struct({ ...builtinConfigFields, buttons: Schema.optionalWith(Schema.Array(Schema.String), { exact: true }) })
    expect(Either.isRight(check({}, { buttons: ["yes", "no"], greeting: "hi" }, Extended))).toBe(true)
    expect(problems({}, { buttons: "yes" }, Extended)).toEqual([{ path: "buttons", reason: 'Expected ReadonlyArray<string>, actual "yes"' }])
  })

  it("a kind without a schema takes any object", () => {
    expect(Either.getOrThrow(checkBotConfig({ botId: "b", kind: "own", current: { a: 1 }, patch: { b: { c: 2 } }, schema: undefined }))).toEqual({ a: 1, b: { c: 2 } })
  })
})
