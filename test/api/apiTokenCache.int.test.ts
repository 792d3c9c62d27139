import { Effect, Either } from "effect"
import { beforeAll, describe, expect, it } from "vitest"
import { addOwner, createToken, makeAuthenticator, revokeToken } from "../../src/api/auth/apiTokens.js"
import { useMigratedDatabase } from "../support/db.js"

/*
 * The token cache (API_TOKEN_CACHE_SECONDS) and the last-used writes: a token that checked out is
 * believed for the cache time and not longer, a revocation shows within it, expiry is exact, a
 * wrong secret is refused even while the token is cached, and last-used times reach the table in
 * the background, at most one per token per 30 s. The clock is the authenticator's own, moved by
 * the test.
 */

const sqlOf = useMigratedDatabase("api_token_cache")
const run = <A, E>(e: Effect.Effect<A, E>) => Effect.runPromise(e)

beforeAll(async () => {
  await run(addOwner(sqlOf(), "carol", null))
})

const newToken = (expiresAt: Date | null = null) => run(createToken(sqlOf(), { ownerId: "carol", scope: "read", expiresAt, label: null }))

const clock = () => {
  let t = Date.now()
  return { now: () => t, advance: (ms: number) => void (t += ms) }
}

const lastUsed = async (tokenId: string) =>
  (await sqlOf().query<{ at: string | null }>("SELECT (extract(epoch FROM last_used_at) * 1000)::bigint::text AS at FROM api_tokens WHERE token_id = $1", [tokenId])).rows[0]!.at

describe("API token checks", () => {
  it("believes a checked token for the cache time: a revocation by another process is refused once it has passed", async () => {
    const c = clock()
    const authenticate = makeAuthenticator(sqlOf(), { cacheMs: 5_000, now: c.now })
    const t = await newToken()
    expect(Either.getOrThrow(await run(authenticate(t.token)))).toEqual({ tokenId: t.tokenId, scope: "read", ownerId: "carol" })
    // as another node's `tokens revoke` would: the row changes, this process is not told
    await sqlOf().query("UPDATE api_tokens SET revoked_at = now() WHERE token_id = $1", [t.tokenId])
    c.advance(4_999)
    expect(Either.isRight(await run(authenticate(t.token)))).toBe(true)
    c.advance(1)
    expect(await run(authenticate(t.token))).toEqual(Either.left("revoked"))
    expect(await run(authenticate(t.token))).toEqual(Either.left("revoked"))
  })

  it("refuses a token revoked in this process on its next request, cached or not", async () => {
    const c = clock()
    const authenticate = makeAuthenticator(sqlOf(), { cacheMs: 60_000, now: c.now })
    const t = await newToken()
    expect(Either.isRight(await run(authenticate(t.token)))).toBe(true)
    await run(revokeToken(sqlOf(), t.tokenId))
    expect(await run(authenticate(t.token))).toEqual(Either.left("revoked"))
  })

  it("with no cache, refuses a revoked token on its next request", async () => {
    const authenticate = makeAuthenticator(sqlOf(), { cacheMs: 0 })
    const t = await newToken()
    expect(Either.isRight(await run(authenticate(t.token)))).toBe(true)
    await run(revokeToken(sqlOf(), t.tokenId))
    expect(await run(authenticate(t.token))).toEqual(Either.left("revoked"))
  })

  it("refuses a wrong secret for a cached token's id, and an expired token at its expiry, cache or not", async () => {
    const c = clock()
    const authenticate = makeAuthenticator(sqlOf(), { cacheMs: 60_000, now: c.now })
    const t = await newToken(new Date(c.now() + 2_000))
    expect(Either.isRight(await run(authenticate(t.token)))).toBe(true)
    const forged = t.token.slice(0, -1) + (t.token.endsWith("A") ? "B" : "A")
    expect(await run(authenticate(forged))).toEqual(Either.left("unknown"))
    expect(Either.isRight(await run(authenticate(t.token)))).toBe(true)
    c.advance(2_000)
    expect(await run(authenticate(t.token))).toEqual(Either.left("expired"))
  })

  it("writes last-used times in the background, at most one per token per 30 s", async () => {
    const c = clock()
    const authenticate = makeAuthenticator(sqlOf(), { cacheMs: 5_000, now: c.now })
    const [a, b] = [await newToken(), await newToken()]
    for (let i = 0; i < 5; i++) {
      await run(authenticate(a.token))
      await run(authenticate(b.token))
    }
    await authenticate.flush()
    const first = await lastUsed(a.tokenId)
    expect(first).not.toBeNull()
    expect(await lastUsed(b.tokenId)).not.toBeNull()
    // within 30 s: nothing more to write
    c.advance(10_000)
    await run(authenticate(a.token))
    await authenticate.flush()
    expect(await lastUsed(a.tokenId)).toBe(first)
    c.advance(20_000)
    await run(authenticate(a.token))
    await authenticate.flush()
    expect(Number(await lastUsed(a.tokenId))).toBe(c.now())
    expect(c.now()).toBeGreaterThan(Number(first))
  })

  it("refuses missing, malformed and unknown tokens without caching anything", async () => {
    const authenticate = makeAuthenticator(sqlOf())
    expect(await run(authenticate(null))).toEqual(Either.left("missing"))
    expect(await run(authenticate("bearer-ish"))).toEqual(Either.left("malformed"))
    const unknown = `bft_${"0".repeat(16)}_${"A".repeat(43)}`
    expect(await run(authenticate(unknown))).toEqual(Either.left("unknown"))
  })
})
