import { Either } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { accessProblems, parseAccessLine } from "../../src/cli/backup/format.pure.js"
import type { AccessRow } from "../../src/cli/backup/format.pure.js"

/*
 * The backup's access file (REST API owners and tokens): every row written reads back the same,
 * and a row the tables would refuse is refused before a restore writes anything.
 */

const ownerId = fc.stringMatching(/^[A-Za-z0-9_.@-]{1,64}$/)
const time = fc.date({ min: new Date("2020-01-01T00:00:00Z"), max: new Date("2040-01-01T00:00:00Z"), noInvalidDate: true }).map((d) => d.toISOString())
const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`))

const owner: fc.Arbitrary<AccessRow> = fc.record({ type: fc.constant("owner" as const), ownerId, name: fc.option(fc.string(), { nil: null }), createdAt: time })
const token: fc.Arbitrary<AccessRow> = fc
  .record({
    tokenId: hex(16),
    owner: fc.option(ownerId, { nil: null }),
    ownerScope: fc.constantFrom("read" as const, "write" as const),
    hash: hex(64),
    label: fc.option(fc.string(), { nil: null }),
    createdAt: time,
    expiresAt: fc.option(time, { nil: null }),
    revokedAt: fc.option(time, { nil: null }),
    lastUsedAt: fc.option(time, { nil: null })
  })
  .map((t) => ({
    type: "token" as const, tokenId: t.tokenId, ownerId: t.owner, scope: t.owner === null ? ("admin" as const) : t.ownerScope, secretHash: `sha256:${t.hash}`,
    label: t.label, createdAt: t.createdAt, expiresAt: t.expiresAt, revokedAt: t.revokedAt, lastUsedAt: t.lastUsedAt
  }))

const validToken = {
  type: "token", tokenId: "0123456789abcdef", ownerId: "acme", scope: "read", secretHash: `sha256:${"a".repeat(64)}`, label: null,
  createdAt: "2026-01-01T00:00:00.000000Z", expiresAt: null, revokedAt: "2026-02-01T00:00:00.000000Z", lastUsedAt: null
}

describe("the backup's access file", () => {
  it("reads back every owner and token row as written", () => {
    fc.assert(fc.property(fc.oneof(owner, token), (row) => {
      expect(parseAccessLine(JSON.stringify(row))).toEqual(Either.right(row))
    }))
  })

  it("refuses rows the tables would refuse, each with its reason", () => {
    const refused = (row: unknown) => Either.isLeft(parseAccessLine(typeof row === "string" ? row : JSON.stringify(row)))
    expect(parseAccessLine(JSON.stringify(validToken))).toEqual(Either.right(validToken))
    expect(refused("{not json")).toBe(true)
    expect(refused({ ...validToken, type: "secret" })).toBe(true)
    expect(refused({ ...validToken, tokenId: "XYZ" })).toBe(true)
    expect(refused({ ...validToken, scope: "root" })).toBe(true)
    // an admin token has no owner, an owner token has one
    expect(refused({ ...validToken, scope: "admin" })).toBe(true)
    expect(refused({ ...validToken, ownerId: null })).toBe(true)
    // only a hash is ever kept: a token itself in the file is refused
    expect(refused({ ...validToken, secretHash: "bft_0123456789abcdef_secret" })).toBe(true)
    expect(refused({ ...validToken, revokedAt: "yesterday" })).toBe(true)
    expect(refused({ ...validToken, expiresAt: "2026-13-45T10:00:00Z" })).toBe(true)
    expect(refused({ type: "owner", ownerId: "no spaces allowed", name: null, createdAt: "2026-01-01T00:00:00Z" })).toBe(true)
  })

  it("names a token whose owner the file does not hold", () => {
    const acme = { type: "owner", ownerId: "acme", name: null, createdAt: "2026-01-01T00:00:00Z" } as const
    const t = validToken as AccessRow
    expect(accessProblems([acme, t])).toEqual([])
    expect(accessProblems([t])).toEqual(["token 0123456789abcdef belongs to owner acme, who is not in the file"])
  })
})
