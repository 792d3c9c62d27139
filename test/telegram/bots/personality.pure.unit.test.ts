import { describe, expect, it } from "vitest"
import { applyPersonality, greetingFor, parseBuiltinConfig } from "../../../src/telegram/bots/personality.pure.js"
import { diffMergePatch } from "../../../src/telegram/bots/sessionPatch.pure.js"
import { mergePatch } from "../../../src/actors/decider/mergePatch.js"
import fc from "fast-check"

describe("built-in configuration and personality", () => {
  it("reads owner commands and keywords leniently", () => {
    const c = parseBuiltinConfig({ commands: { "/Hours": "9-5", bad$: "x", start: "no", faq: { reply: "see site", description: "questions" } }, keywords: [{ match: "hi", reply: "hello" }, { match: "" }] })
    expect(Object.keys(c.commands)).toEqual(["hours", "faq"])
    expect(c.keywords).toEqual([{ match: "hi", reply: "hello" }])
    expect(c.personality).toMatchObject({ name: null, tone: "plain", emoji: "none", formality: "neutral", vocabulary: {} })
    expect(parseBuiltinConfig(null).greeting).toBe("Hello, {name}!")
  })

  it("applies the tone to every text", () => {
    expect(applyPersonality({ name: null, tone: "plain" }, "Hi")).toBe("Hi")
    expect(applyPersonality({ name: null, tone: "friendly" }, "Hi")).toBe("Hi 😊")
    expect(applyPersonality({ name: "Max", tone: "formal" }, "Hi")).toBe("Hi\n\n— Max")
    expect(applyPersonality({ name: null, tone: "pirate" }, "Thank you for my gold")).toBe("Arr! Thank ye for me gold")
  })

  it("greets new users with the owner's greeting and known ones in their language", () => {
    const c = parseBuiltinConfig({ greeting: "Hi {name}!", personality: { name: "Bo" } })
    expect(greetingFor(c, { firstName: "Ann", returning: false })).toBe("Hi Ann! I am Bo.")
    expect(greetingFor(c, { firstName: "Ann", languageCode: "fr", returning: true })).toBe("Bon retour, Ann !")
    expect(greetingFor(c, { firstName: "Ann", languageCode: "xx", returning: true })).toBe("Welcome back, Ann!")
  })
})

describe("session patches", () => {
  // merge patches cannot carry null values (null deletes), so sessions hold none
  const json = fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v), (k, x: unknown) => (x === null ? 0 : k === "__proto__" ? undefined : x)) as unknown)
  const obj = fc.dictionary(fc.string({ maxLength: 4 }).filter((k) => k !== "__proto__"), json, { maxKeys: 5 })
  it("applying the diff as a merge patch turns the old session into the new one", () => {
    fc.assert(
      fc.property(obj, obj, (before, after) => {
        const patch = diffMergePatch(before, after)
        expect(patch === undefined ? before : mergePatch(before, patch)).toEqual(after)
      })
    )
  })
  it("records nothing when nothing changed, and only the changed keys otherwise", () => {
    expect(diffMergePatch({ a: 1, b: { c: 2 } }, { a: 1, b: { c: 2 } })).toBeUndefined()
    expect(diffMergePatch({ a: 1, b: { c: 2, d: 3 } }, { a: 1, b: { c: 2 } })).toEqual({ b: { d: null } })
    expect(diffMergePatch(undefined, { n: 1 })).toEqual({ n: 1 })
  })
})
