import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { bearerOf, parseApiToken, scopeAllows } from "../../src/api/auth/apiToken.pure.js"
import { decodeCursor, encodeCursor, pageOf } from "../../src/api/rest/cursor.pure.js"

describe("API cursors", () => {
  it("decode what they encode, for any key of strings and safe integers", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string({ maxLength: 40 }), fc.maxSafeInteger()), { minLength: 1, maxLength: 3 }), (key) => {
        expect(decodeCursor(encodeCursor(key), key.length)).toEqual(key)
      })
    )
  })

  it("refuse anything that is not one of theirs (never throw)", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), fc.integer({ min: 1, max: 3 }), (text, arity) => {
        const key = decodeCursor(text, arity)
        expect(key === null || (Array.isArray(key) && key.length === arity)).toBe(true)
      })
    )
    expect(decodeCursor(encodeCursor(["a", 1]), 1)).toBeNull()
    expect(decodeCursor(Buffer.from('{"a":1}').toString("base64url"), 1)).toBeNull()
  })

  it("pages: the next cursor only when there is a row past the limit", () => {
    expect(pageOf([1, 2, 3], 2, (n) => [n])).toEqual({ items: [1, 2], nextCursor: encodeCursor([2]) })
    expect(pageOf([1, 2], 2, (n) => [n])).toEqual({ items: [1, 2], nextCursor: null })
  })
})

describe("API tokens", () => {
  it("parse only their own shape", () => {
    const token = `bft_0123456789abcdef_${"A".repeat(43)}`
    expect(parseApiToken(token)).toEqual({ tokenId: "0123456789abcdef", secret: "A".repeat(43) })
    for (const bad of ["", "bft_", token + "x", token.replace("bft_", "bfx_"), token.toUpperCase(), `bft_0123456789abcdeg_${"A".repeat(43)}`]) {
      expect(parseApiToken(bad), bad).toBeNull()
    }
  })

  it("come from Bearer headers only", () => {
    expect(bearerOf("Bearer abc")).toBe("abc")
    expect(bearerOf("bearer  abc ")).toBe("abc")
    expect(bearerOf("Basic abc")).toBeNull()
    expect(bearerOf(undefined)).toBeNull()
    expect(bearerOf("Bearer a b")).toBeNull()
  })

  it("scopes: read tokens read, write tokens write", () => {
    expect(scopeAllows("read", "read")).toBe(true)
    expect(scopeAllows("read", "write")).toBe(false)
    expect(scopeAllows("write", "write")).toBe(true)
  })
})
