import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto"
import { Data } from "effect"
import type { SqlClient } from "../db/sql.js"
import { ERASED, formatSealed, parseSealed } from "./sealedValue.pure.js"

/**
 * Per-user data keys for crypto-shredding (issue 14, "forgetting a user"; see
 * docs/privacy.md). A user of a bot gets a random 256-bit key the
 * first time one is asked for; the key is stored sealed with a key derived from the fleet key, in
 * `user_keys` (sql/0131), never in the event log. `seal`/`open` encrypt a personal field with it
 * (AES-256-GCM, a fresh nonce per value, the bot and user bound in as associated data so a sealed
 * value cannot be moved to another user). `forget` destroys the key: from then on `open` answers
 * `[erased]` for every value sealed with it, wherever a copy of it lives.
 */

export { ERASED, isSealed } from "./sealedValue.pure.js"

export class UserForgotten extends Data.TaggedError("UserForgotten")<{ readonly botId: string; readonly userId: number }> {
  override get message() {
    return `user ${this.userId} of bot ${this.botId} was forgotten: no key is made for them again`
  }
}

export class KeyStoreUnavailable extends Data.TaggedError("KeyStoreUnavailable")<{ readonly operation: string; readonly cause: unknown }> {
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `user key store unavailable during ${this.operation}: ${cause}`
  }
}

const aad = (botId: string, userId: number) => Buffer.from(`${botId}\u0000${userId}`)

// nonces are cut from a pool of random bytes, never reused (the pool is replaced, not refilled in
// place): one randomBytes call per 4,096 values instead of one per value, a quarter of a seal's cost
const NONCES = 4096
let noncePool = Buffer.alloc(0)
let nonceAt = 0
const freshNonce = (): Buffer => {
  if (nonceAt + 12 > noncePool.length) {
    noncePool = randomBytes(12 * NONCES)
    nonceAt = 0
  }
  const n = noncePool.subarray(nonceAt, nonceAt + 12)
  nonceAt += 12
  return n
}

const gcmSeal = (key: Uint8Array, plain: Uint8Array, ad: Uint8Array): string => {
  const nonce = freshNonce()
  const c = createCipheriv("aes-256-gcm", key, nonce)
  c.setAAD(ad)
  const body = Buffer.concat([c.update(plain), c.final()])
  return Buffer.concat([nonce, body, c.getAuthTag()]).toString("base64url")
}

const gcmOpen = (key: Uint8Array, sealed: string, ad: Uint8Array): Buffer => {
  const raw = Buffer.from(sealed, "base64url")
  const d = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12))
  d.setAAD(ad)
  d.setAuthTag(raw.subarray(raw.length - 16))
  return Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()])
}

/** Seals `value` of user `userId` with their key (the value format: sealedValue.pure.ts). */
export const sealWithKey = (key: Uint8Array, botId: string, userId: number, value: string): string =>
  formatSealed(userId, gcmSeal(key, Buffer.from(value, "utf8"), aad(botId, userId)))

/**
 * Opens a sealed value with its user's key; `[erased]` when the key is gone (null). A value that
 * is not sealed comes back as it is. Throws when the value does not open with this key (tampered,
 * or moved from another bot or user).
 */
export const openWithKey = (key: Uint8Array | null, botId: string, sealed: string): string => {
  const parsed = parseSealed(sealed)
  if (parsed === null) return sealed
  return key === null ? ERASED : gcmOpen(key, parsed.body, aad(botId, parsed.userId)).toString("utf8")
}

/** A user's key as the store holds it: the key, none yet, or destroyed (the user was forgotten). */
export type KeyState = { readonly _tag: "Key"; readonly key: Buffer } | { readonly _tag: "None" } | { readonly _tag: "Forgotten" }

export interface UserKeys {
  /** Seals a personal field of a user; creates the user's key on first use. Fails with UserForgotten for a forgotten user. */
  readonly seal: (botId: string, userId: number, value: string) => Promise<string>
  /** The clear value, or `[erased]` when the user's key was destroyed (or never existed). */
  readonly open: (botId: string, userId: number, sealed: string) => Promise<string>
  /** Destroys the user's key and marks them forgotten (idempotent); resolves with false when they already were. */
  readonly forget: (botId: string, userId: number, by: string) => Promise<boolean>
  /** The user's key; with `create`, made first when the user has none (never for a forgotten user). */
  readonly keyState: (botId: string, userId: number, create: boolean) => Promise<KeyState>
  /**
   * The keys of many users of one bot, in one round trip per KEY_BATCH users (an import seals
   * tens of thousands of users' records in one append): with `create`, one INSERT … SELECT unnest
   * makes the missing ones (never for a forgotten user), then one SELECT reads them all. Users
   * with no key (and `create` false) map to None.
   */
  readonly keyStates: (botId: string, userIds: ReadonlyArray<number>, create: boolean) => Promise<Map<number, KeyState>>
}

/** Users per statement of `keyStates`: bounds the statement's size, not the round trips of a normal batch (one). */
export const KEY_BATCH = 10_000

/**
 * The key store over Postgres. `fleetKey` is the fleet's secret key (32 bytes); the key that seals
 * user keys is derived from it (HKDF, its own label), so it is not the key that seals bot tokens.
 */
export const makeUserKeys = (sql: SqlClient, fleetKey: Uint8Array): UserKeys => {
  const kek = Buffer.from(hkdfSync("sha256", fleetKey, Buffer.alloc(0), "botfleet user keys v1", 32))
  // no cache here: the cache with its bound on staleness is keyCache.ts
  const query = async <R extends Record<string, unknown>>(operation: string, text: string, params: ReadonlyArray<unknown>) => {
    try {
      return await sql.query<R>(text, params)
    } catch (cause) {
      throw new KeyStoreUnavailable({ operation, cause })
    }
  }
  const keyState = async (botId: string, userId: number, create: boolean): Promise<KeyState> => {
    if (create) {
      // first writer wins: a concurrent creator reads the key the winner stored
      const fresh = gcmSeal(kek, randomBytes(32), aad(botId, userId))
      await query("create", "INSERT INTO user_keys (bot_id, user_id, sealed_key) VALUES ($1, $2, $3) ON CONFLICT (bot_id, user_id) DO NOTHING", [botId, userId, fresh])
    }
    const { rows } = await query<{ sealed_key: string | null }>("read", "SELECT sealed_key FROM user_keys WHERE bot_id = $1 AND user_id = $2", [botId, userId])
    const row = rows[0]
    if (!row) return { _tag: "None" }
    if (row.sealed_key === null) return { _tag: "Forgotten" }
    return { _tag: "Key", key: gcmOpen(kek, row.sealed_key, aad(botId, userId)) }
  }
  const keyStates = async (botId: string, userIds: ReadonlyArray<number>, create: boolean): Promise<Map<number, KeyState>> => {
    const out = new Map<number, KeyState>()
    const unique = [...new Set(userIds)]
    for (let i = 0; i < unique.length; i += KEY_BATCH) {
      const users = unique.slice(i, i + KEY_BATCH)
      if (create) {
        const fresh = users.map((u) => gcmSeal(kek, randomBytes(32), aad(botId, u)))
        await query(
          "create",
          "INSERT INTO user_keys (bot_id, user_id, sealed_key) SELECT $1, u, k FROM unnest($2::bigint[], $3::text[]) AS t(u, k) ON CONFLICT (bot_id, user_id) DO NOTHING",
          [botId, users, fresh]
        )
      }
      const { rows } = await query<{ user_id: string | number; sealed_key: string | null }>(
        "read",
        "SELECT user_id, sealed_key FROM user_keys WHERE bot_id = $1 AND user_id = ANY($2::bigint[])",
        [botId, users]
      )
      for (const u of users) out.set(u, { _tag: "None" })
      for (const r of rows) {
        const u = Number(r.user_id)
        out.set(u, r.sealed_key === null ? { _tag: "Forgotten" } : { _tag: "Key", key: gcmOpen(kek, r.sealed_key, aad(botId, u)) })
      }
    }
    return out
  }
  return {
    keyStates,
    seal: async (botId, userId, value) => {
      const k = await keyState(botId, userId, true)
      if (k._tag !== "Key") throw new UserForgotten({ botId, userId })
      return sealWithKey(k.key, botId, userId, value)
    },
    open: async (botId, userId, sealed) => {
      const parsed = parseSealed(sealed)
      if (parsed === null) return sealed
      // the user named in the value must be the one asked for: a value moved to another user does not open
      if (parsed.userId !== userId) throw new Error(`sealed value of user ${parsed.userId} read as user ${userId}'s`)
      const k = await keyState(botId, userId, false)
      return openWithKey(k._tag === "Key" ? k.key : null, botId, sealed)
    },
    keyState,
    forget: async (botId, userId, by) => {
      const { rowCount } = await query(
        "forget",
        `INSERT INTO user_keys (bot_id, user_id, sealed_key, forgotten_at, forgotten_by) VALUES ($1, $2, NULL, now(), $3)
         ON CONFLICT (bot_id, user_id) DO UPDATE SET sealed_key = NULL, forgotten_at = now(), forgotten_by = $3 WHERE user_keys.sealed_key IS NOT NULL`,
        [botId, userId, by]
      )
      return rowCount > 0
    }
  }
}
