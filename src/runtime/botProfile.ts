import { Data, Effect } from "effect"
import type { Redacted } from "effect"
import { decodeCore } from "../actors/decider/snapshot.js"
import type { SnapshotStoreService } from "../actors/snapshotStore.js"
import type { EventLogService } from "../events/eventLog.js"
import type { TokenVault } from "../telegram/tokenVault.js"

/** What the node's Telegram side needs to know of a bot before its actor starts. */
export interface BotProfile {
  readonly botId: string
  readonly name: string
  /** The bot kind (`builtin` or a BOT_MODULES kind). */
  readonly kind: string
  readonly mode: "webhook" | "polling" | "sandbox"
  readonly token: Redacted.Redacted<string>
  readonly ownerId: string
}

/** The bot cannot be run here: never registered, or registered without a token. */
export class BotNotRunnable extends Data.TaggedError("BotNotRunnable")<{ readonly botId: string; readonly reason: string }> {
  override get message() {
    return `bot ${this.botId} cannot run: ${this.reason}`
  }
}

/**
 * Folds the bot's registration facts (BotRegistered, BotTokenRotated) and opens its token. With a
 * snapshot store, the fold starts from the bot's newest snapshot and reads only the events after
 * it: the cost of preparing a bot does not grow with its history (and a hot log trimmed below the
 * snapshot still has every event it needs). The token stays Redacted: it is read in clear only by
 * the Bot API client.
 */
export const loadBotProfile = (log: EventLogService, vault: TokenVault, botId: string, snapshots?: SnapshotStoreService) =>
  Effect.gen(function* () {
    const snap = snapshots ? yield* snapshots.load(botId).pipe(Effect.orElseSucceed(() => null)) : null
    const core = snap ? decodeCore(snap.schemaVersion, snap.state) : null
    let name: string | null = core?.name ?? null
    let kind = core?.kind ?? "builtin"
    let mode: BotProfile["mode"] = core?.mode ?? "webhook"
    let ciphertext: string | null = core?.tokenCiphertext ?? null
    let ownerId = core?.ownerId ?? ""
    const events = yield* log.readStream(botId, core && snap ? { from: snap.version + 1 } : {})
    for (const e of events) {
      const d = e.data
      if (d._tag === "BotRegistered") {
        name = d.name
        kind = d.kind
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
