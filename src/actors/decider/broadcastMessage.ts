/**
 * One message of a broadcast, as the bot's inbox carries it (pure; the runner puts these in, the
 * bot's actor sends them: src/broadcast/runner.ts, src/telegram/bots/broadcastSend.ts).
 *
 * Each message is an update with its own update_id, derived from the broadcast and the
 * recipient's place in its frozen list: negative (Telegram's are positive) and consecutive within
 * a broadcast, so the decider's dedupe window holds a whole broadcast as one run. A message the
 * runner puts in twice (a crash between putting it in and recording how far it got) is dropped
 * by that window; a message whose send a crash left unknown is never sent again (recorded calls).
 * So each user receives it at most once.
 */

export const BROADCAST_FIELD = "botfleet_broadcast"

/** Recipients per broadcast, at most (the id space of one broadcast's update_ids). */
export const MAX_RECIPIENTS = 100_000_000

export interface BroadcastMessage {
  readonly broadcastId: number
  readonly seq: number
  readonly userId: number
  readonly text: string
}

export const broadcastUpdateId = (broadcastId: number, seq: number): number => -(broadcastId * MAX_RECIPIENTS + seq + 1)

export const broadcastUpdate = (m: BroadcastMessage): { readonly update_id: number; readonly [BROADCAST_FIELD]: BroadcastMessage } => ({
  update_id: broadcastUpdateId(m.broadcastId, m.seq),
  [BROADCAST_FIELD]: m
})

export const broadcastMessageOf = (update: unknown): BroadcastMessage | null => {
  const m = (update as Record<string, unknown> | null)?.[BROADCAST_FIELD] as Record<string, unknown> | undefined
  if (typeof m !== "object" || m === null) return null
  const ok = ["broadcastId", "seq", "userId"].every((k) => Number.isSafeInteger(m[k])) && typeof m["text"] === "string"
  return ok ? (m as unknown as BroadcastMessage) : null
}

/** The session key a bot keeps a broadcast's progress under (counters, recorded with each message). */
export const broadcastSessionKey = (broadcastId: number): string => `broadcast:${broadcastId}`

export interface BroadcastProgress {
  readonly sent: number
  readonly blocked: number
  readonly failed: number
  /** Messages handled (sent, skipped or failed). */
  readonly handled: number
}
