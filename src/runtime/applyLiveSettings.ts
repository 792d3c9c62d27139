import { Effect } from "effect"
import type { LogLevel, Scope } from "effect"
import type { Supervisor } from "../actors/supervisor.js"
import type { BotfleetConfig } from "../config.js"
import { sendLimitsOf } from "../telegram/limits.pure.js"
import type { SendLimits } from "../telegram/limits.pure.js"
import type { LiveSettings } from "./liveSettings.js"

/**
 * Wires a node's live settings to what reads them: the logger's level, the supervisor's
 * activation budget, passivation delay and resident cap, and every Bot API sender's limits. Each
 * is applied only when its value changed. Settings read where they are used (BACKUP_KEEP, and any
 * setting whose code reads `settings.current()`) need nothing here. Unsubscribed with the scope.
 */
export const applyLiveSettings = (o: {
  readonly settings: LiveSettings
  readonly supervisor: Supervisor
  readonly setSendLimits: (limits: SendLimits) => void
  readonly logLevel?: { level: LogLevel.LogLevel }
}): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    let before: BotfleetConfig = o.settings.current()
    const apply = (c: BotfleetConfig) => {
      if (o.logLevel && c.logLevel !== before.logLevel) o.logLevel.level = c.logLevel
      if (c.activationsPerSecond !== before.activationsPerSecond || c.passivateAfterMs !== before.passivateAfterMs || c.maxResidentBots !== before.maxResidentBots) {
        Effect.runSync(o.supervisor.tune({ activationsPerSecond: c.activationsPerSecond, passivateAfterMs: c.passivateAfterMs, maxResident: c.maxResidentBots }))
      }
      const s = c.sendLimits
      const b = before.sendLimits
      if (s.perBotPerSecond !== b.perBotPerSecond || s.perChatPerSecond !== b.perChatPerSecond || s.perGroupPerMinute !== b.perGroupPerMinute) o.setSendLimits(sendLimitsOf(s))
      before = c
    }
    yield* Effect.acquireRelease(Effect.sync(() => o.settings.subscribe(apply)), (off) => Effect.sync(off))
  })
