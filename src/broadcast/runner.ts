import type { Duration} from "effect";
import { Effect, Schedule } from "effect"
import { broadcastSessionKey, broadcastUpdate } from "../actors/decider/broadcastMessage.js"
import type { BroadcastProgress } from "../actors/decider/broadcastMessage.js"
import type { InboxService } from "../actors/inbox.js"
import type { SqlClient } from "../db/sql.js"
import type { EventLogService } from "../events/eventLog.js"

/**
 * The broadcast runner: puts the messages of running broadcasts into their bots' inboxes, a few
 * at a time, and copies each broadcast's progress from its bot's stream into its row.
 *
 * Pacing: the bot's sender keeps Telegram's limit (30 messages/s per bot, slower on 429s); the
 * runner only keeps at most `window` entries waiting in the bot's inbox, so the bot's users'
 * updates never queue behind a whole broadcast, and a pause or cancel takes effect within
 * `window` messages.
 *
 * Crash safety: messages are put in first, `next_seq` advanced after; a crash in between puts the
 * same messages in again, with the same update_ids, and the bot drops them as duplicates
 * (broadcastMessage.ts). Several nodes running the runner at once do the same. So a broadcast
 * resumes where it was after any crash, and each user gets it at most once.
 */
export interface RunnerPorts {
  readonly sql: SqlClient
  readonly log: EventLogService
  readonly inbox: InboxService
}

/** Entries of a bot's stream read (newest first) to find its inbox cursor and a broadcast's latest progress. */
const RECENT = 500

const recentOf = (log: EventLogService, botId: string) =>
  Effect.runPromise(log.readStream(botId, { direction: "backward", limit: RECENT }))

/** One round over the due broadcasts; resolves with how many messages it put into inboxes. */
export const runBroadcastsOnce = async (p: RunnerPorts, o: { readonly window: number; readonly now: Date }): Promise<number> => {
  const due = await p.sql.query<{ broadcast_id: string; bot_id: string; text: string; total: number; next_seq: number }>(
    "SELECT broadcast_id, bot_id, text, total, next_seq FROM broadcasts WHERE state = 'running' AND not_before <= $1 ORDER BY broadcast_id",
    [o.now.toISOString()]
  )
  let queued = 0
  for (const b of due.rows) {
    const id = Number(b.broadcast_id)
    const recent = await recentOf(p.log, b.bot_id)
    const cursor = recent.find((e) => e.data._tag === "UpdateReceived" || e.data._tag === "UpdateDuplicateDropped" || e.data._tag === "UpdateFailed")
    const cursorId = cursor ? (cursor.data as { inboxId: string }).inboxId : null
    const progress = recent.find((e) => e.data._tag === "SessionChanged" && e.data.key === broadcastSessionKey(id))
    if (progress) {
      const c = (progress.data as { patch: BroadcastProgress }).patch
      await p.sql.query("UPDATE broadcasts SET sent = $2, blocked = $3, failed = $4, handled = $5, updated_at = now() WHERE broadcast_id = $1 AND handled < $5", [id, c.sent, c.blocked, c.failed, c.handled])
    }
    const waiting = await Effect.runPromise(p.inbox.lag(b.bot_id, cursorId, o.window + 1))
    if (b.next_seq >= b.total) {
      // everything is in the inbox; done once the bot has handled all of it
      if (waiting === 0) await p.sql.query("UPDATE broadcasts SET state = 'done', updated_at = now() WHERE broadcast_id = $1 AND state = 'running'", [id])
      continue
    }
    const room = o.window - waiting
    if (room <= 0) continue
    const batch = await p.sql.query<{ seq: number; user_id: string }>(
      "SELECT seq, user_id FROM broadcast_recipients WHERE broadcast_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
      [id, b.next_seq, room]
    )
    for (const r of batch.rows) {
      await Effect.runPromise(p.inbox.enqueue(b.bot_id, broadcastUpdate({ broadcastId: id, seq: r.seq, userId: Number(r.user_id), text: b.text })))
      queued++
    }
    const last = batch.rows.at(-1)
    // advanced only if nobody else did (another node's runner): theirs and ours were the same messages
    if (last) await p.sql.query("UPDATE broadcasts SET next_seq = $3, updated_at = now() WHERE broadcast_id = $1 AND next_seq = $2", [id, b.next_seq, last.seq + 1])
  }
  return queued
}

/** Runs rounds forever, `every` apart; a failed round (a store away) is logged and the next one tries again. */
export const runBroadcasts = (p: RunnerPorts, o: { readonly window: number; readonly every: Duration.DurationInput }): Effect.Effect<never> =>
  Effect.tryPromise(() => runBroadcastsOnce(p, { window: o.window, now: new Date() })).pipe(
    Effect.catchAll((e) => Effect.logWarning(`broadcast round failed, next round retries: ${String(e.error)}`)),
    Effect.repeat(Schedule.spaced(o.every)),
    Effect.zipRight(Effect.never)
  )
