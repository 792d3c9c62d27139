import type { EventEnvelope } from "../events/schema/envelope.js"
import { epochMs } from "../events/schema/time.js"

/*
 * What /metrics learns from the events a node projects, pure: the events carry the outcomes and
 * their recorded times, so the counts are the same whichever thread or node ran the bot.
 */

export type UpdateOutcome = "handled" | "failed" | "duplicate"

export type Observation =
  | { readonly _tag: "Update"; readonly botId: string; readonly outcome: UpdateOutcome }
  /** From an update entering the inbox to the bot's first reply to it, as recorded. */
  | { readonly _tag: "Reply"; readonly botId: string; readonly seconds: number }
  | { readonly _tag: "Kind"; readonly botId: string; readonly kind: string }
  /** An AI reply (`ok`, with the tokens it used) or a fallback instead of one (its reason). */
  | { readonly _tag: "Ai"; readonly botId: string; readonly result: string; readonly tokens: number }

export type TalliedEvent = Pick<EventEnvelope, "botId" | "correlationId" | "data">

/** Updates with a reply seen and their UpdateReceived not yet, remembered at most (oldest dropped first). */
export const MAX_OPEN_REPLIES = 10_000

/**
 * A tally over the projected events, in log order. Update outcomes are one event each
 * (UpdateReceived, UpdateFailed, UpdateDuplicateDropped). Reply latency pairs an update's first
 * ReplySent with its UpdateReceived, which carries `receivedAt` and is appended with or after the
 * reply (the update's last step): both carry the update's correlation id. A pair whose halves are
 * projected by different nodes is not measured; with one call per update both halves are in one
 * append, so they are projected together.
 */
const keyOf = (e: TalliedEvent) => `${e.botId}\u0000${e.correlationId}`

export const makeEventTally = (maxOpen: number = MAX_OPEN_REPLIES) => {
  const firstReply = new Map<string, number>()
  return (events: Iterable<TalliedEvent>): ReadonlyArray<Observation> => {
    const out: Observation[] = []
    for (const e of events) {
      const d = e.data
      switch (d._tag) {
        case "BotRegistered":
          out.push({ _tag: "Kind", botId: e.botId, kind: d.kind })
          break
        case "ReplySent": {
          const key = keyOf(e)
          if (firstReply.has(key)) break
          const at = epochMs(d.at)
          if (at === undefined) break
          firstReply.set(key, at)
          if (firstReply.size > maxOpen) firstReply.delete(firstReply.keys().next().value!)
          break
        }
        case "UpdateReceived": {
          out.push({ _tag: "Update", botId: e.botId, outcome: "handled" })
          if (firstReply.size === 0) break
          const key = keyOf(e)
          const replied = firstReply.get(key)
          if (replied === undefined) break
          firstReply.delete(key)
          const received = epochMs(d.receivedAt)
          // clocks of two machines (the inbox store's and the actor's) may disagree by a little
          if (received !== undefined) out.push({ _tag: "Reply", botId: e.botId, seconds: Math.max(0, replied - received) / 1000 })
          break
        }
        case "UpdateFailed":
          if (firstReply.size > 0) firstReply.delete(keyOf(e))
          out.push({ _tag: "Update", botId: e.botId, outcome: "failed" })
          break
        case "UpdateDuplicateDropped":
          out.push({ _tag: "Update", botId: e.botId, outcome: "duplicate" })
          break
        case "AiReplied":
          out.push({ _tag: "Ai", botId: e.botId, result: "ok", tokens: d.promptTokens + d.completionTokens })
          break
        case "AiFallbackUsed":
          out.push({ _tag: "Ai", botId: e.botId, result: d.reason, tokens: 0 })
          break
        default:
          break
      }
    }
    return out
  }
}
