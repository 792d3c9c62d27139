import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import { Data, Effect, Either } from "effect"
import type { SqlClient } from "../../db/sql.js"
import { parseOwnerId } from "../../events/ownerId.js"
import type { OwnerIdInvalid } from "../../events/ownerId.js"
import { parseApiToken, TOKEN_PREFIX } from "./apiToken.pure.js"
import type { TokenScope } from "./apiToken.pure.js"

/*
 * Owners and their API tokens (sql/0055). A token is made here, shown to its creator once, and
 * only its secret's SHA-256 is stored: a leaked table grants nothing. Checking a token is one
 * primary-key read by its id and a constant-time comparison of the hashes. All of this runs as
 * the node's own login, never as the api role (which cannot read these tables at all).
 */

/** The tables could not be read or written (database down, migrations not applied). */
export class ApiAccessUnavailable extends Data.TaggedError("ApiAccessUnavailable")<{ readonly operation: string; readonly cause: unknown }> {
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `cannot ${this.operation}: ${cause}`
  }
}

export class OwnerExists extends Data.TaggedError("OwnerExists")<{ readonly ownerId: string }> {
  override get message() {
    return `owner ${this.ownerId} already exists (botfleet owners list)`
  }
}

export class OwnerUnknown extends Data.TaggedError("OwnerUnknown")<{ readonly ownerId: string }> {
  override get message() {
    return `owner ${this.ownerId} does not exist: add it first (botfleet owners add ${this.ownerId})`
  }
}

export class TokenUnknown extends Data.TaggedError("TokenUnknown")<{ readonly tokenId: string }> {
  override get message() {
    return `no API token has the id ${this.tokenId} (botfleet tokens list)`
  }
}

/** Why a presented token was refused. Never carries the token. */
export type TokenRefusal = "missing" | "malformed" | "unknown" | "revoked" | "expired"

/** Who a request is, once its token checked out. */
export interface Principal {
  readonly tokenId: string
  readonly scope: TokenScope
  /** null for an admin token. */
  readonly ownerId: string | null
}

export interface TokenRow {
  readonly tokenId: string
  readonly ownerId: string | null
  readonly scope: TokenScope
  readonly label: string | null
  readonly createdAt: string
  readonly expiresAt: string | null
  readonly revokedAt: string | null
  readonly lastUsedAt: string | null
}

const hashOf = (secret: string): string => `sha256:${createHash("sha256").update(secret, "utf8").digest("hex")}`

const attempt = <A>(operation: string, f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: (cause) => new ApiAccessUnavailable({ operation, cause }) })

const validOwner = (ownerId: string): Effect.Effect<string, OwnerIdInvalid> => {
  const o = parseOwnerId(ownerId)
  return Either.isLeft(o) ? Effect.fail(o.left) : Effect.succeed(o.right)
}

/** Records an owner who may hold API tokens. */
export const addOwner = (sql: SqlClient, ownerId: string, name: string | null) =>
  Effect.gen(function* () {
    const id = yield* validOwner(ownerId)
    const r = yield* attempt("add the owner", () =>
      sql.query("INSERT INTO api_owners (owner_id, name) VALUES ($1, $2) ON CONFLICT (owner_id) DO NOTHING", [id, name])
    )
    if (r.rowCount === 0) return yield* new OwnerExists({ ownerId: id })
    return { ownerId: id, name }
  })

export const listOwners = (sql: SqlClient) =>
  attempt("list the owners", async () =>
    (
      await sql.query<{ owner_id: string; name: string | null; created_at: string; tokens: string }>(
        `SELECT o.owner_id, o.name, o.created_at::text,
                (SELECT count(*) FROM api_tokens t WHERE t.owner_id = o.owner_id AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now()))::text AS tokens
           FROM api_owners o ORDER BY o.owner_id`
      )
    ).rows.map((r) => ({ ownerId: r.owner_id, name: r.name, createdAt: r.created_at, activeTokens: Number(r.tokens) }))
  )

/**
 * Makes a token: for an owner (scope read or write) or for ops (scope admin, no owner). Returns
 * the token itself, which is never stored and cannot be shown again.
 */
export const createToken = (sql: SqlClient, o: { readonly ownerId: string | null; readonly scope: TokenScope; readonly expiresAt: Date | null; readonly label: string | null }) =>
  Effect.gen(function* () {
    const ownerId = o.ownerId === null ? null : yield* validOwner(o.ownerId)
    if (ownerId !== null) {
      const known = yield* attempt("read the owner", () => sql.query("SELECT 1 FROM api_owners WHERE owner_id = $1", [ownerId]))
      if (known.rowCount === 0) return yield* new OwnerUnknown({ ownerId })
    }
    const tokenId = randomBytes(8).toString("hex")
    const secret = randomBytes(32).toString("base64url")
    yield* attempt("store the token", () =>
      sql.query("INSERT INTO api_tokens (token_id, owner_id, scope, secret_hash, label, expires_at) VALUES ($1, $2, $3, $4, $5, $6)", [
        tokenId,
        ownerId,
        o.scope,
        hashOf(secret),
        o.label,
        o.expiresAt?.toISOString() ?? null
      ])
    )
    return { tokenId, token: `${TOKEN_PREFIX}${tokenId}_${secret}`, ownerId, scope: o.scope, expiresAt: o.expiresAt?.toISOString() ?? null }
  })

export const listTokens = (sql: SqlClient, ownerId?: string) =>
  attempt("list the tokens", async () =>
    (
      await sql.query<{ token_id: string; owner_id: string | null; scope: TokenScope; label: string | null; created_at: string; expires_at: string | null; revoked_at: string | null; last_used_at: string | null }>(
        `SELECT token_id, owner_id, scope, label, created_at::text, expires_at::text, revoked_at::text, last_used_at::text
           FROM api_tokens WHERE $1::text IS NULL OR owner_id = $1 ORDER BY created_at, token_id`,
        [ownerId ?? null]
      )
    ).rows.map(
      (r): TokenRow => ({
        tokenId: r.token_id,
        ownerId: r.owner_id,
        scope: r.scope,
        label: r.label,
        createdAt: r.created_at,
        expiresAt: r.expires_at,
        revokedAt: r.revoked_at,
        lastUsedAt: r.last_used_at
      })
    )
  )

/**
 * The authenticators of this process: a token revoked here (the CLI a node runs for another
 * process, an embedded node's own commands) is dropped from their caches at once; other processes
 * refuse it within their cache time.
 */
const authenticatorCaches = new Set<Map<string, unknown>>()

/** Revokes a token for good (its next request is refused). Revoking twice is not an error. */
export const revokeToken = (sql: SqlClient, tokenId: string) =>
  Effect.gen(function* () {
    const r = yield* attempt("revoke the token", () =>
      sql.query<{ revoked_at: string }>("UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE token_id = $1 RETURNING revoked_at::text", [tokenId])
    )
    const row = r.rows[0]
    if (row === undefined) return yield* new TokenUnknown({ tokenId })
    for (const cache of authenticatorCaches) cache.delete(tokenId)
    return { tokenId, revokedAt: row.revoked_at }
  })

/** Last-used times are written at most this often per token: a busy token costs no write per request. */
const TOUCH_EVERY_MS = 30_000
/** Last-used times due are written together, one statement for every token, this long after the first. */
const FLUSH_AFTER_MS = 1_000
/** Most tokens the cache holds (only tokens that checked out get in: a prober cannot fill it). */
const CACHE_MAX = 10_000

export interface AuthenticatorOptions {
  /**
   * How long a token that checked out is believed without reading its row again (default 5 s; 0:
   * every request reads it). The bound on revocation: a token revoked in the database is refused
   * by every node within this time (by this process's at once when revoked here). Expiry is exact: the cached expiry time is checked each time.
   */
  readonly cacheMs?: number
  /** The clock (tests move it). */
  readonly now?: () => number
}

/** Checks presented tokens: see `makeAuthenticator`. */
export interface Authenticator {
  (presented: string | null): Effect.Effect<Either.Either<Principal, TokenRefusal>, ApiAccessUnavailable>
  /** Writes the last-used times not yet written (tests; a node stopping). Never fails. */
  readonly flush: () => Promise<void>
}

interface Verified {
  readonly hash: Buffer
  readonly principal: Principal
  readonly expiresAtMs: number | null
  readonly checkedAt: number
}

/**
 * Checks a presented token. Either the principal, or why it was refused (the caller answers 401
 * alike for every refusal, so a prober learns nothing). A token that checked out is kept in memory
 * for `cacheMs` (its id, its secret's hash, owner, scope, expiry), so a busy client costs no read
 * per request; the secret is compared with the hash every time, in constant time. Records when the
 * token was last used: at most every 30 s per token, written in the background with the other
 * tokens due (one statement), never delaying or failing a request.
 */
export const makeAuthenticator = (sql: SqlClient, options: AuthenticatorOptions = {}): Authenticator => {
  const cacheMs = options.cacheMs ?? 5_000
  const now = options.now ?? Date.now
  const verified = new Map<string, Verified>()
  // a cache of a few kilobytes per process lifetime: authenticators are made once per node
  authenticatorCaches.add(verified)
  const touched = new Map<string, number>()
  const due = new Map<string, number>()
  let flushing: ReturnType<typeof setTimeout> | null = null

  const flush = async (): Promise<void> => {
    if (flushing !== null) clearTimeout(flushing)
    flushing = null
    if (due.size === 0) return
    const ids = [...due.keys()]
    const at = ids.map((id) => new Date(due.get(id)!).toISOString())
    due.clear()
    // best effort: a lost last-used time is only a less recent one
    await sql
      .query(
        `UPDATE api_tokens t SET last_used_at = greatest(t.last_used_at, u.at)
           FROM unnest($1::text[], $2::timestamptz[]) AS u(token_id, at) WHERE t.token_id = u.token_id`,
        [ids, at]
      )
      .catch(() => undefined)
  }
  const touch = (tokenId: string, at: number) => {
    if ((touched.get(tokenId) ?? -Infinity) + TOUCH_EVERY_MS > at) return
    touched.set(tokenId, at)
    due.set(tokenId, at)
    if (flushing === null) {
      flushing = setTimeout(() => void flush(), FLUSH_AFTER_MS)
      flushing.unref()
    }
  }
  const remember = (tokenId: string, v: Verified) => {
    if (cacheMs <= 0) return
    verified.delete(tokenId)
    if (verified.size >= CACHE_MAX) verified.delete(verified.keys().next().value!)
    verified.set(tokenId, v)
  }
  const matches = (want: Buffer, secret: string) => {
    const got = Buffer.from(hashOf(secret))
    return want.length === got.length && timingSafeEqual(want, got)
  }
  const accept = (tokenId: string, v: Verified, at: number): Either.Either<Principal, TokenRefusal> => {
    if (v.expiresAtMs !== null && v.expiresAtMs <= at) {
      verified.delete(tokenId)
      return Either.left("expired")
    }
    touch(tokenId, at)
    return Either.right(v.principal)
  }

  const authenticate = (presented: string | null): Effect.Effect<Either.Either<Principal, TokenRefusal>, ApiAccessUnavailable> =>
    Effect.gen(function* () {
      if (presented === null) return Either.left("missing" as const)
      const parsed = parseApiToken(presented)
      if (parsed === null) return Either.left("malformed" as const)
      const at = now()
      const cached = verified.get(parsed.tokenId)
      if (cached !== undefined && at - cached.checkedAt < cacheMs) {
        // the row's hash never changes: a wrong secret is refused without reading it again
        if (!matches(cached.hash, parsed.secret)) return Either.left("unknown" as const)
        return accept(parsed.tokenId, cached, at)
      }
      const { rows } = yield* attempt("check the API token", () =>
        sql.query<{ owner_id: string | null; scope: TokenScope; secret_hash: string; revoked: boolean; expires_ms: string | null }>(
          `SELECT owner_id, scope, secret_hash, revoked_at IS NOT NULL AS revoked, (extract(epoch FROM expires_at) * 1000)::bigint::text AS expires_ms
             FROM api_tokens WHERE token_id = $1`,
          [parsed.tokenId]
        )
      )
      const row = rows[0]
      if (row === undefined) return Either.left("unknown" as const)
      const hash = Buffer.from(row.secret_hash)
      if (!matches(hash, parsed.secret)) return Either.left("unknown" as const)
      if (row.revoked) {
        verified.delete(parsed.tokenId)
        return Either.left("revoked" as const)
      }
      const v: Verified = { hash, principal: { tokenId: parsed.tokenId, scope: row.scope, ownerId: row.owner_id }, expiresAtMs: row.expires_ms === null ? null : Number(row.expires_ms), checkedAt: at }
      remember(parsed.tokenId, v)
      return accept(parsed.tokenId, v, at)
    })
  return Object.assign(authenticate, { flush })
}

/** `--expires` values: a duration (`30d`, `12h`, `90m`) from `nowMs`, or an ISO date/time; null when neither or past. */
export const parseExpiry = (text: string, nowMs: number): Date | null => {
  const d = /^(\d{1,6})([dhm])$/.exec(text.trim())
  if (d) {
    const unit = d[2] === "d" ? 86_400_000 : d[2] === "h" ? 3_600_000 : 60_000
    const n = Number(d[1])
    return n > 0 ? new Date(nowMs + n * unit) : null
  }
  if (!/^\d{4}-\d{2}-\d{2}/.test(text.trim())) return null
  const at = Date.parse(text.trim())
  return Number.isFinite(at) && at > nowMs ? new Date(at) : null
}
