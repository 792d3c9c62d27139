import { describe, expect, it } from "vitest"
import { ERASED, UserForgotten, isSealed, makeUserKeys } from "../../src/privacy/userKeys.js"
import { useMigratedDatabase } from "../support/db.js"

const sql = useMigratedDatabase("user_keys")
const fleetKey = Buffer.alloc(32, 9)

describe("per-user keys (crypto-shredding groundwork)", () => {
  it("seals a user's field with their key, opens it, and after forget reads [erased] everywhere", async () => {
    const keys = makeUserKeys(sql(), fleetKey)
    const a = await keys.seal("b", 1, "Ann Smith")
    const a2 = await keys.seal("b", 1, "Ann Smith")
    expect(isSealed(a)).toBe(true)
    expect(a).not.toContain("Ann")
    expect(a2).not.toBe(a) // a fresh nonce per value
    expect(await keys.open("b", 1, a)).toBe("Ann Smith")
    const other = await keys.seal("b", 2, "Bob")
    // the key row itself is sealed with the fleet key: the table alone reveals no key
    const rows = (await sql().query<{ sealed_key: string }>("SELECT sealed_key FROM user_keys ORDER BY user_id")).rows
    expect(rows).toHaveLength(2)

    // a second process (another node, the CLI) sees the same keys
    const elsewhere = makeUserKeys(sql(), fleetKey)
    expect(await elsewhere.open("b", 1, a)).toBe("Ann Smith")
    // a value cannot be moved to another user: it does not open under their key
    await expect(keys.open("b", 2, a)).rejects.toThrow()

    expect(await keys.forget("b", 1, "owner:alice")).toBe(true)
    expect(await keys.forget("b", 1, "owner:alice")).toBe(false)
    expect(await keys.open("b", 1, a)).toBe(ERASED)
    expect(await elsewhere.open("b", 1, a2)).toBe(ERASED)
    await expect(keys.seal("b", 1, "Ann again")).rejects.toBeInstanceOf(UserForgotten)
    expect(await keys.open("b", 2, other)).toBe("Bob")
    // a clear value passes through; a user never seen reads erased
    expect(await keys.open("b", 3, "plain")).toBe("plain")
    const { rows: forgotten } = await sql().query<{ forgotten_by: string; sealed_key: string | null }>("SELECT forgotten_by, sealed_key FROM user_keys WHERE user_id = 1")
    expect(forgotten).toEqual([{ forgotten_by: "owner:alice", sealed_key: null }])
    // with another fleet key the stored keys do not open
    await expect(makeUserKeys(sql(), Buffer.alloc(32, 1)).open("b", 2, other)).rejects.toThrow()
  })
})
