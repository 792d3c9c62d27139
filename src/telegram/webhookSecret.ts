import { createHash, createHmac, timingSafeEqual } from "node:crypto"
import { Redacted } from "effect"

/**
 * Each bot's webhook secret (`X-Telegram-Bot-Api-Secret-Token`), derived from the fleet key and
 * the bot id: HMAC-SHA256, base64url (Telegram allows `A-Za-z0-9_-`, up to 256 chars). Derived,
 * not stored, so there is nothing more to keep secret or rotate separately, every node computes
 * the same value, and a leaked secret of one bot says nothing about another's.
 */
export const webhookSecretFor = (key: Uint8Array | Redacted.Redacted<Uint8Array>, botId: string): string =>
  createHmac("sha256", Buffer.from(Redacted.isRedacted(key) ? Redacted.value(key) : key))
    .update(`webhook:${botId}`)
    .digest("base64url")

/**
 * Compares a presented secret with the expected one in constant time. Both are hashed first so
 * the comparison takes as long whatever the presented length (timingSafeEqual needs equal sizes).
 */
export const secretMatches = (presented: string | undefined, expected: string): boolean =>
  secretMatchesDigest(presented, secretDigest(expected))

/** The digest `secretMatchesDigest` compares with: computed once per bot, not per request. */
export const secretDigest = (expected: string): Buffer => createHash("sha256").update(expected).digest()

/** `secretMatches` against an expected secret's `secretDigest`: one hash per request instead of three. */
export const secretMatchesDigest = (presented: string | undefined, expectedDigest: Buffer): boolean => {
  const a = createHash("sha256").update(presented ?? "").digest()
  return timingSafeEqual(a, expectedDigest) && presented !== undefined
}
