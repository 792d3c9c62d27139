/*
 * What a sealed personal field looks like inside an event, apart from the crypto (userKeys.ts) so
 * the event walk (personalFields.pure.ts) can find sealed values without importing node:crypto.
 * `sealed:v1:<userId>:<base64url(nonce ‖ AES-256-GCM ciphertext ‖ tag)>`: the user id is in
 * clear (it is in clear in the rest of the event too) so a reader knows whose key opens it
 * without knowing the event's shape.
 */

/** What an erased field reads as. */
export const ERASED = "[erased]"

export const SEALED_PREFIX = "sealed:v1:"

/** Whether a field value is a sealed one. */
export const isSealed = (v: unknown): v is string => typeof v === "string" && v.startsWith(SEALED_PREFIX)

/** The user a sealed value belongs to and its body; null for a value that is not sealed or is malformed. */
export const parseSealed = (v: string): { readonly userId: number; readonly body: string } | null => {
  if (!v.startsWith(SEALED_PREFIX)) return null
  const colon = v.indexOf(":", SEALED_PREFIX.length)
  if (colon < 0) return null
  const userId = Number(v.slice(SEALED_PREFIX.length, colon))
  if (!Number.isSafeInteger(userId)) return null
  return { userId, body: v.slice(colon + 1) }
}

export const formatSealed = (userId: number, body: string): string => `${SEALED_PREFIX}${userId}:${body}`
