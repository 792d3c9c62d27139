import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { adaptationChange, adapt, detectFormality, detectLanguage, detectLength } from "../../../src/telegram/bots/adaptation.pure.js"
import { applyPersona, applyVocabulary, parsePersona, systemPrompt } from "../../../src/telegram/bots/persona.pure.js"
import { greetingFor, parseBuiltinConfig } from "../../../src/telegram/bots/personality.pure.js"
import { DEMO_BOTS } from "../../../src/runtime/demoFleet.js"

describe("personas", () => {
  it("the four tones are presets an owner's fields override", () => {
    expect(parsePersona({ tone: "pirate" }).vocabulary).toMatchObject({ you: "ye", my: "me" })
    expect(parsePersona({ tone: "friendly", emoji: "none" })).toMatchObject({ tone: "friendly", emoji: "none", formality: "casual" })
    expect(parsePersona({ tone: "nonsense", vocabulary: { "bad$": "x", Shop: "store" } })).toMatchObject({ tone: "plain", vocabulary: { shop: "store" } })
  })

  it("the pirate keeps sentence starts capitalised (was: 'Arr! ye will find…')", () => {
    const pirate = parsePersona({ tone: "pirate" })
    expect(applyPersona(pirate, "You will find my treasure where the X marks the spot.")).toBe("Arr! Ye will find me treasure where the X marks the spot.")
    expect(applyPersona(pirate, "Hello friend. You are YOUR own captain.")).toBe("Arr! Ahoy matey. Ye are YER own captain.")
  })

  it("vocabulary replaces whole words only and never changes a word's case", () => {
    const upperFirst = (s: string) => s.length > 0 && s[0] === s[0]!.toUpperCase() && s[0] !== s[0]!.toLowerCase()
    fc.assert(
      fc.property(fc.array(fc.constantFrom("you", "You", "YOU", "my", "My", "youth", "mystery", "x", "."), { maxLength: 12 }), (words) => {
        const text = words.join(" ")
        const out = applyVocabulary({ you: "ye", my: "me" }, text).split(" ")
        words.forEach((w, i) => {
          if (["youth", "mystery", "x", "."].includes(w)) expect(out[i]).toBe(w)
          else expect(upperFirst(out[i]!)).toBe(upperFirst(w))
        })
      })
    )
  })

  it("the Clerk names himself once in his greeting (was: 'I am The Clerk' and the signature)", () => {
    const clerk = parseBuiltinConfig(DEMO_BOTS.find((b) => b.botId === "demo-clerk")!.config)
    const greeting = applyPersona(clerk.personality, greetingFor(clerk, { firstName: "Ann", returning: false }))
    expect(greeting).toBe("Good day, Ann. How may I assist you?\n\n— The Clerk")
    expect(greeting.split("The Clerk")).toHaveLength(2)
    // a persona that does not sign still introduces itself
    const sunny = parseBuiltinConfig({ greeting: "Hi {name}!", personality: { name: "Sunny", tone: "friendly" } })
    expect(greetingFor(sunny, { firstName: "Ann", returning: false })).toBe("Hi Ann! I am Sunny.")
  })

  it("a user who writes formally gets no emoji; the system prompt carries persona and adaptation", () => {
    const sunny = parsePersona({ name: "Sunny", tone: "friendly", language: "en" })
    expect(applyPersona(sunny, "Sure")).toBe("Sure 😊")
    expect(applyPersona(sunny, "Sure", { formality: "formal" })).toBe("Sure")
    const prompt = systemPrompt(sunny, { language: "de", length: "short" }, "Only talk about the weather.")
    expect(prompt).toContain("You are Sunny")
    expect(prompt).toContain("Answer in German.")
    expect(prompt).toContain("one or two short sentences")
    expect(prompt.endsWith("Only talk about the weather.")).toBe(true)
    // a forgotten user's learned language reads [erased]: the persona's own language is used
    expect(systemPrompt(sunny, { language: "[erased]" }, null)).toContain("Answer in English.")
  })
})

describe("per-user adaptation", () => {
  it("reads language, formality and length from a message when it shows them", () => {
    expect(detectLanguage("Привет, как дела?")).toBe("ru")
    expect(detectLanguage("Hallo, ich habe eine Frage und bitte um Hilfe")).toBe("de")
    expect(detectLanguage("ok")).toBeUndefined()
    expect(detectFormality("Could you please tell me the price?")).toBe("formal")
    expect(detectFormality("hey lol")).toBe("casual")
    expect(detectFormality("the price")).toBeUndefined()
    expect(detectLength("hi")).toBe("short")
    expect(detectLength("x".repeat(200))).toBe("long")
  })

  it("records only what changed, and a message that agrees with what is known changes nothing", () => {
    expect(adaptationChange({}, { text: "hey there", languageCode: "fr" })).toEqual({ language: "fr", formality: "casual", length: "short" })
    expect(adaptationChange({ language: "fr", formality: "casual", length: "short" }, { text: "hey there", languageCode: "fr" })).toBeUndefined()
    const message = fc.record({ text: fc.string({ maxLength: 300 }), languageCode: fc.option(fc.constantFrom("en", "de", "fr-FR"), { nil: undefined }) })
    fc.assert(
      fc.property(message, (m) => {
        const known = adapt({}, adaptationChange({}, m) ?? {})
        expect(adaptationChange(known, m)).toBeUndefined()
      })
    )
  })
})
