/*
 * The shape of an API token: `bft_<id>_<secret>`. The id (16 hex) names the row, so a lookup is
 * one primary-key read and logs can name the token without holding it; the secret (43 base64url
 * characters, 256 random bits) is what proves it. Pure: making the random bytes and hashing them
 * is apiTokens.ts's job.
 */

export const TOKEN_PREFIX = "bft_"
const TOKEN_PATTERN = /^bft_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/

export type TokenScope = "read" | "write" | "admin"
export const TOKEN_SCOPES: ReadonlyArray<TokenScope> = ["read", "write", "admin"]

/** A presented token split into its id and secret; null when it is not a botfleet token at all. */
export const parseApiToken = (text: string): { readonly tokenId: string; readonly secret: string } | null => {
  const m = TOKEN_PATTERN.exec(text)
  return m ? { tokenId: m[1]!, secret: m[2]! } : null
}

/** The token from an `Authorization: Bearer …` header; null when absent or of another scheme. */
export const bearerOf = (header: string | undefined): string | null => {
  if (header === undefined) return null
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header)
  return m ? m[1]! : null
}

/** Whether a token of `scope` may do what `needs` asks: admin ⊃ write ⊃ read (admin for ops routes only). */
export const scopeAllows = (scope: TokenScope, needs: "read" | "write"): boolean => scope === "write" || scope === "admin" || needs === "read"
