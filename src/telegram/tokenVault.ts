import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto"
import { Data, Effect, Redacted } from "effect"

/**
 * Bot tokens at rest: AES-256-GCM with the fleet's secret key (config `BOTFLEET_SECRET_KEY`).
 * The ciphertext is bound to the bot id (as associated data), so a ciphertext copied onto another
 * bot fails to open instead of lending that bot someone else's token. Plain tokens only ever live
 * in a `Redacted`, which prints as `<redacted>` in logs, JSON and inspection.
 */

/** Ciphertext could not be opened: wrong key, wrong bot, or tampered with. Never retryable. */
export class TokenUndecryptable extends Data.TaggedError("TokenUndecryptable")<{
  readonly botId: string
  readonly reason: "Malformed" | "WrongKeyOrTampered"
}> {
  override get message() {
    return `the token of bot ${this.botId} cannot be decrypted: ${this.reason}`
  }
}

/**
 * A token that is not even shaped like a Bot API token. The check is loose on purpose: getMe is
 * the real check, and test servers hand out short tokens.
 */
export class TokenMalformed extends Data.TaggedError("TokenMalformed")<{ readonly botId: string; readonly reason: "NotTokenShaped" }> {
  override get message() {
    return (
      `the token given for bot ${this.botId} is not a Bot API token: expected <digits>:<letters, digits, '_' or '-'>, ` +
      `the form @BotFather gives (e.g. 110201543:AAHdqTcv...)`
    )
  }
}

const VERSION = "v1"
/** `<digits>:<non-empty [A-Za-z0-9_-]>`: the shape only. */
export const TOKEN_PATTERN = /^\d+:[A-Za-z0-9_-]+$/

export interface TokenVault {
  readonly seal: (botId: string, token: Redacted.Redacted<string>) => Effect.Effect<string, TokenMalformed>
  readonly open: (botId: string, ciphertext: string) => Effect.Effect<Redacted.Redacted<string>, TokenUndecryptable>
}

/** Builds a vault from a 32-byte key; throws at start-up on a wrong-sized key rather than later. */
export const makeTokenVault = (key: Uint8Array | Redacted.Redacted<Uint8Array>): TokenVault => {
  const k = Buffer.from(Redacted.isRedacted(key) ? Redacted.value(key) : key)
  if (k.length !== 32) throw new Error("the token vault needs a 32-byte key")
  return {
    seal: (botId, token) =>
      Effect.suspend(() => {
        const clear = Redacted.value(token)
        if (!TOKEN_PATTERN.test(clear)) return Effect.fail(new TokenMalformed({ botId, reason: "NotTokenShaped" }))
        const iv = randomBytes(12)
        const cipher = createCipheriv("aes-256-gcm", k, iv)
        cipher.setAAD(Buffer.from(botId, "utf8"))
        const body = Buffer.concat([cipher.update(clear, "utf8"), cipher.final()])
        const tag = cipher.getAuthTag()
        return Effect.succeed(`${VERSION}:${Buffer.concat([iv, tag, body]).toString("base64url")}`)
      }),
    open: (botId, ciphertext) =>
      Effect.suspend(() => {
        const [version, payload] = ciphertext.split(":")
        if (version !== VERSION || !payload) return Effect.fail(new TokenUndecryptable({ botId, reason: "Malformed" }))
        const raw = Buffer.from(payload, "base64url")
        if (raw.length < 29) return Effect.fail(new TokenUndecryptable({ botId, reason: "Malformed" }))
        try {
          const decipher = createDecipheriv("aes-256-gcm", k, raw.subarray(0, 12))
          decipher.setAAD(Buffer.from(botId, "utf8"))
          decipher.setAuthTag(raw.subarray(12, 28))
          const clear = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8")
          return Effect.succeed(Redacted.make(clear))
        } catch {
          return Effect.fail(new TokenUndecryptable({ botId, reason: "WrongKeyOrTampered" }))
        }
      })
  }
}

/** The bot's numeric Telegram id, the part of a token before the colon: safe to show. */
export const telegramIdOfToken = (token: Redacted.Redacted<string>): string => Redacted.value(token).split(":")[0] ?? ""
