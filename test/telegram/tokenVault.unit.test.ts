import { Effect, Either, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { inspect } from "node:util"
import { describe, expect, it } from "vitest"
import { makeTokenVault } from "../../src/telegram/tokenVault.js"

const token = Redacted.make("123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw")

describe("token vault", () => {
  it("round-trips a token and never holds it in clear in the ciphertext", async () => {
    const vault = makeTokenVault(randomBytes(32))
    const sealed = await Effect.runPromise(vault.seal("bot-1", token))
    expect(sealed).toMatch(/^v1:/)
    expect(sealed).not.toContain("AAHdqTcv")
    expect(sealed).not.toBe(await Effect.runPromise(vault.seal("bot-1", token)))
    const opened = await Effect.runPromise(vault.open("bot-1", sealed))
    expect(Redacted.value(opened)).toBe(Redacted.value(token))
  })

  it("refuses another bot's ciphertext, a wrong key and tampering", async () => {
    const key = randomBytes(32)
    const vault = makeTokenVault(key)
    const sealed = await Effect.runPromise(vault.seal("bot-1", token))
    const otherBot = await Effect.runPromise(Effect.either(vault.open("bot-2", sealed)))
    expect(Either.isLeft(otherBot) && otherBot.left.reason).toBe("WrongKeyOrTampered")
    const otherKey = await Effect.runPromise(Effect.either(makeTokenVault(randomBytes(32)).open("bot-1", sealed)))
    expect(Either.isLeft(otherKey)).toBe(true)
    const flipped = sealed.slice(0, -2) + (sealed.endsWith("A") ? "BB" : "AA")
    expect(Either.isLeft(await Effect.runPromise(Effect.either(vault.open("bot-1", flipped))))).toBe(true)
    const junk = await Effect.runPromise(Effect.either(vault.open("bot-1", "nonsense")))
    expect(Either.isLeft(junk) && junk.left.reason).toBe("Malformed")
  })

  it("checks the shape loosely, <digits>:<letters, digits, _ or ->, and says what it expects", async () => {
    const vault = makeTokenVault(randomBytes(32))
    const seal = (t: string) => Effect.runPromise(Effect.either(vault.seal("bot-1", Redacted.make(t))))
    for (const ok of ["1:a", "4242:t", "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "7:_-x9"]) {
      expect(Either.isRight(await seal(ok))).toBe(true)
    }
    for (const bad of ["hello", "123:", ":abc", "abc:def", "12 3:abc", "123:a b", "123:abc!", "123:abc:def", ""]) {
      const r = await seal(bad)
      expect(Either.isLeft(r) && r.left.reason).toBe("NotTokenShaped")
      expect(Either.isLeft(r) && r.left.message).toContain("expected <digits>:<letters, digits, '_' or '-'>")
    }
  })

  it("rejects things that are not tokens and never prints a token", async () => {
    const vault = makeTokenVault(randomBytes(32))
    const bad = await Effect.runPromise(Effect.either(vault.seal("bot-1", Redacted.make("hello"))))
    expect(Either.isLeft(bad) && bad.left._tag).toBe("TokenMalformed")
    const opened = await Effect.runPromise(vault.open("bot-1", await Effect.runPromise(vault.seal("bot-1", token))))
    expect(JSON.stringify({ opened })).not.toContain("AAHdqTcv")
    expect(inspect(opened)).not.toContain("AAHdqTcv")
    expect(String(opened)).not.toContain("AAHdqTcv")
    expect(() => makeTokenVault(randomBytes(16))).toThrow(/32-byte/)
  })
})
