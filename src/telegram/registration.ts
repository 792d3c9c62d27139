import { Data, Effect, Redacted } from "effect"
import { makeBotApi } from "./botApi.js"
import type { BotApiError } from "./botApi.js"
import type { TokenMalformed, TokenVault } from "./tokenVault.js"

/**
 * Adding a bot, or rotating its token: the token is checked with `getMe` against the bot's API
 * root, then sealed with the vault. Only the ciphertext leaves this module (into `BotRegistered` /
 * `BotTokenRotated`); the clear token is never returned, logged, or put in an error.
 */

/** The token belongs to a different Telegram bot than the one being rotated. */
export class TokenForAnotherBot extends Data.TaggedError("TokenForAnotherBot")<{ readonly botId: string; readonly expected: number; readonly actual: number }> {
  override get message() {
    return `bot ${this.botId}: the new token is for Telegram bot ${this.actual}, not ${this.expected}`
  }
}

export interface CheckedToken {
  readonly tokenCiphertext: string
  /** What Telegram says about the bot: safe to show and store. */
  readonly telegramId: number
  readonly username: string
  readonly firstName: string
}

export const checkAndSealToken = (args: {
  readonly botId: string
  readonly token: Redacted.Redacted<string>
  readonly vault: TokenVault
  readonly apiRoot: string
  /** When rotating: the Telegram id the bot already has; a token of another bot is refused. */
  readonly expectedTelegramId?: number
}): Effect.Effect<CheckedToken, TokenMalformed | BotApiError | TokenForAnotherBot> =>
  Effect.gen(function* () {
    // seal first: a malformed token is refused without sending it anywhere
    const tokenCiphertext = yield* args.vault.seal(args.botId, args.token)
    const me = (yield* makeBotApi(Redacted.value(args.token), { apiRoot: args.apiRoot }).call("getMe")) as {
      id: number
      username?: string
      first_name?: string
    }
    if (args.expectedTelegramId !== undefined && me.id !== args.expectedTelegramId) {
      return yield* Effect.fail(new TokenForAnotherBot({ botId: args.botId, expected: args.expectedTelegramId, actual: me.id }))
    }
    return { tokenCiphertext, telegramId: me.id, username: me.username ?? "", firstName: me.first_name ?? "" }
  })
