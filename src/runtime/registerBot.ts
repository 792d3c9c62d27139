import { Effect } from "effect"
import type { Redacted } from "effect"
import type { EventLogService } from "../events/eventLog.js"
import { parseOwnerId } from "../events/ownerId.js"
import type { TokenVault } from "../telegram/tokenVault.js"
import type { FleetDirectory } from "./fleetDirectory.js"

export interface BotRegistration {
  readonly botId: string
  readonly ownerId: string
  /** For sandbox bots, also their sandbox username. */
  readonly name: string
  readonly kind: string
  readonly mode: "webhook" | "polling" | "sandbox"
  readonly token: Redacted.Redacted<string>
  readonly config: unknown
}

/**
 * Registers a bot in the fleet, once: `BotRegistered` (token sealed with the fleet key, never in
 * clear) is appended only to an empty stream, under a short lease, so of two racing registrations
 * one wins and the other changes nothing; then the bot is listed in the fleet directory (nodes
 * start it). Resolves with true when this call registered it, false when it already was. An owner
 * id outside the safe alphabet (ownerId.ts) fails with OwnerIdInvalid before anything is written.
 */
export const registerBot = (o: {
  readonly log: EventLogService
  readonly vault: TokenVault
  readonly directory: FleetDirectory
  readonly nodeId: string
  readonly bot: BotRegistration
}) =>
  Effect.gen(function* () {
    const { bot } = o
    yield* parseOwnerId(bot.ownerId)
    let registered = false
    if ((yield* o.log.streamVersion(bot.botId)) === 0) {
      const tokenCiphertext = yield* o.vault.seal(bot.botId, bot.token)
      const lease = yield* o.log.acquireLease(bot.botId, o.nodeId, 10_000)
      if (lease) {
        const appended = yield* Effect.either(
          o.log.append({
            botId: bot.botId,
            expectedVersion: 0,
            fence: lease.fence,
            events: [
              {
                data: { _tag: "BotRegistered", ownerId: bot.ownerId, name: bot.name, kind: bot.kind, mode: bot.mode, tokenCiphertext, config: bot.config },
                occurredAt: new Date().toISOString(),
                correlationId: `register:${bot.botId}`,
                actor: `owner:${bot.ownerId}`
              }
            ]
          })
        )
        yield* Effect.ignore(o.log.releaseLease(lease))
        if (appended._tag === "Left" && appended.left._tag !== "WrongExpectedVersion") return yield* appended.left
        registered = appended._tag === "Right"
      }
    }
    yield* o.directory.add(bot.botId)
    return registered
  })
