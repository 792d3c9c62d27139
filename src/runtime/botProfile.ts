import { Data, Effect } from "effect"
import type { Redacted } from "effect"
import type { EventLogService } from "../events/eventLog.js"
import type { TokenVault } from "../telegram/tokenVault.js"

/** What the node's Telegram side needs to know of a bot before its actor starts. */
export interface BotProfile {
  readonly botId: string
  readonly name: string
  readonly mode: "webhook" | "polling" | "sandbox"
  readonly token: Redacted.Redacted<string>
  readonly ownerId: string
  /** "builtin" or an owner's BOT_MODULES kind. */
  readonly kind: string
}

/** The bot cannot be run here: never registered, or registered without a token. */
export class BotNotRunnable extends Data.TaggedError("BotNotRunnable")<{ readonly botId: string; readonly reason: string }> {
  override get message() {
    return `bot ${this.botId} cannot run: ${this.reason}`
  }
}

/**
 * Folds the bot's registration facts from its stream (BotRegistered, BotTokenRotated) and opens
 * its token. The token stays Redacted: it is read in clear only by the Bot API client.
 */
export const loadBotProfile = (log: EventLogService, vault: TokenVault, botId: string) =>
  Effect.gen(function* () {
    const events = yield* log.readStream(botId)
    let name: string | null = null
    let mode: BotProfile["mode"] = "webhook"
    let ciphertext: string | null = null
    let ownerId = ""
    let kind = "builtin"
    for (const e of events) {
      const d = e.data
      if (d._tag === "BotRegistered") {
        name = d.name
        mode = d.mode
        ownerId = d.ownerId
        kind = d.kind
        ciphertext = d.tokenCiphertext ?? null
      } else if (d._tag === "BotTokenRotated") ciphertext = d.tokenCiphertext
    }
    if (name === null) return yield* new BotNotRunnable({ botId, reason: "it was never registered" })
    if (ciphertext === null) return yield* new BotNotRunnable({ botId, reason: "it has no token" })
    const token = yield* vault.open(botId, ciphertext)
    return { botId, name, mode, token, ownerId, kind } satisfies BotProfile
  })
