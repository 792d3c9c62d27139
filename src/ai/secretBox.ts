import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto"
import { Data, Redacted } from "effect"
import { SEALED_PREFIX } from "./aiConfig.pure.js"

/**
 * Model API keys at rest, sealed like bot tokens (src/telegram/tokenVault.ts): AES-256-GCM with the
 * fleet's secret key, bound to the bot id (another bot's sealed key does not open), `sealed:v1:`
 * + base64url(iv | tag | ciphertext). The clear key lives only in a `Redacted` and in the model
 * client's closure; the configuration, its events and every printout hold the sealed form.
 */

export class ApiKeyUnsealable extends Data.TaggedError("ApiKeyUnsealable")<{ readonly botId: string }> {
  override get message() {
    return `the model API key of bot ${this.botId} cannot be opened (wrong fleet key, another bot's key, or tampered with): set it again with bots configure --set ai.apiKey=...`
  }
}

const VERSION = `${SEALED_PREFIX}v1:`
const aad = (botId: string) => Buffer.from(`ai-key:${botId}`, "utf8")

export interface SecretBox {
  readonly seal: (botId: string, clear: Redacted.Redacted<string>) => string
  readonly open: (botId: string, sealed: string) => Redacted.Redacted<string> | ApiKeyUnsealable
}

export const makeSecretBox = (key: Uint8Array | Redacted.Redacted<Uint8Array>): SecretBox => {
  const k = Buffer.from(Redacted.isRedacted(key) ? Redacted.value(key) : key)
  if (k.length !== 32) throw new Error("the secret box needs a 32-byte key")
  return {
    seal: (botId, clear) => {
      const iv = randomBytes(12)
      const cipher = createCipheriv("aes-256-gcm", k, iv)
      cipher.setAAD(aad(botId))
      const body = Buffer.concat([cipher.update(Redacted.value(clear), "utf8"), cipher.final()])
      return `${VERSION}${Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64url")}`
    },
    open: (botId, sealed) => {
      if (!sealed.startsWith(VERSION)) return new ApiKeyUnsealable({ botId })
      const raw = Buffer.from(sealed.slice(VERSION.length), "base64url")
      if (raw.length < 29) return new ApiKeyUnsealable({ botId })
      try {
        const decipher = createDecipheriv("aes-256-gcm", k, raw.subarray(0, 12))
        decipher.setAAD(aad(botId))
        decipher.setAuthTag(raw.subarray(12, 28))
        return Redacted.make(Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8"))
      } catch {
        return new ApiKeyUnsealable({ botId })
      }
    }
  }
}

/**
 * A config patch with its clear `ai.apiKey` sealed (what `bots configure` records): a key already
 * sealed, null (removes it) or no key at all leave the patch as it is.
 */
export const sealApiKeyInPatch = (patch: unknown, botId: string, box: SecretBox): unknown => {
  const p = patch as { ai?: { apiKey?: unknown } } | null
  const key = p?.ai?.apiKey
  if (typeof key !== "string" || key.startsWith(SEALED_PREFIX)) return patch
  return { ...(patch as object), ai: { ...p!.ai, apiKey: box.seal(botId, Redacted.make(key)) } }
}
