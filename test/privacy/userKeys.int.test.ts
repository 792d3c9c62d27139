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
  it("looks up and makes the keys of many users together: the same keys, none for a forgotten user, nothing made without create", async () => {
    const keys = makeUserKeys(sql(), fleetKey)
    const users = Array.from({ length: 2500 }, (_, i) => 10_000 + i)
    await keys.forget("many", 10_003, "owner:o")
    const before = await keys.keyStates("many", [10_000, 10_001], false)
    expect([...before.values()].map((k) => k._tag)).toEqual(["None", "None"])
    const made = await keys.keyStates("many", [...users, 10_000], true)
    expect(made.size).toBe(users.length)
    expect(made.get(10_003)!._tag).toBe("Forgotten")
    // each key is the one the single lookup reads (and seals values that open one by one)
    for (const u of [10_000, 10_001, 12_499]) {
      const k = made.get(u)!
      const one = await keys.keyState("many", u, false)
      expect(k._tag === "Key" && one._tag === "Key" && k.key.equals(one.key)).toBe(true)
    }
    // asked again (another process racing the first): the stored keys, not new ones
    const again = await keys.keyStates("many", users, true)
    const k0 = again.get(10_000)!
    const m0 = made.get(10_000)!
    expect(k0._tag === "Key" && m0._tag === "Key" && k0.key.equals(m0.key)).toBe(true)
    const { rows } = await sql().query<{ n: string }>("SELECT count(*) AS n FROM user_keys WHERE bot_id = 'many' AND sealed_key IS NOT NULL")
    expect(Number(rows[0]!.n)).toBe(users.length - 1)
  })
})
