import { broadcastMessageOf, broadcastSessionKey } from "../../actors/decider/broadcastMessage.js"
import type { BroadcastProgress } from "../../actors/decider/broadcastMessage.js"
import { RecordedCallFailed, RecordedCallUnknown } from "../../actors/decider/updateHandler.js"
import type { UpdateHandler } from "../../actors/decider/updateHandler.js"

/**
 * The bot's side of a broadcast (actors/decider/broadcastMessage.ts), in front of every bot kind:
 * a broadcast message is sent as a recorded `sendMessage` to the user's private chat, and the
 * broadcast's progress is recorded with it as one `SessionChanged` of the session
 * `broadcast:<id>` holding the whole counters (so the newest such event is the progress). A user
 * who blocked the bot is not messaged (the decider refuses the call without sending it) and
 * counts as blocked, like a 403 from Telegram; a send a crash left unknown counts as failed and is
 * never sent again.
 */
export const withBroadcasts = (inner: UpdateHandler): UpdateHandler => ({
  handle: async (ctx) => {
    const m = broadcastMessageOf(ctx.update)
    if (m === null) return inner.handle(ctx)
    const key = broadcastSessionKey(m.broadcastId)
    const before = (ctx.state.sessions.get(key) ?? {}) as Partial<BroadcastProgress>
    const p = { sent: before.sent ?? 0, blocked: before.blocked ?? 0, failed: before.failed ?? 0, handled: before.handled ?? 0 }
    let outcome: "sent" | "blocked" | "failed" = "sent"
    try {
      await ctx.call("sendMessage", { chat_id: m.userId, text: m.text })
    } catch (e) {
      if (e instanceof RecordedCallFailed) outcome = e.errorCode === 403 ? "blocked" : "failed"
      else if (e instanceof RecordedCallUnknown) outcome = "failed"
      else throw e
    }
    const next: BroadcastProgress = { ...p, [outcome]: p[outcome] + 1, handled: p.handled + 1 }
    return [{ _tag: "SessionChanged", key, patch: { ...next } }]
  }
})
