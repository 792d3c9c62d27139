import { Effect } from "effect"
import type { SqlClient, SqlTx } from "../db/sql.js"
import { checkUpdate, InboxUnavailable } from "./inbox.js"
import type { InboxDeadLetter, InboxEntry, InboxService, InvalidUpdate } from "./inbox.js"

export interface PostgresInboxOptions {
  /** Migrated with sql/0030_runtime_stores.sql. The inbox does not close it: its owner does. */
  readonly sql: SqlClient
  /**
   * Longest sleep of `waitFor` between two looks at the table when no enqueue of this process
   * woke it (an enqueue on another node). Default 250 ms.
   */
  readonly pollMs?: number
}

/** Ids are `<seq>-0`, so they order like Redis stream ids (compareInboxIds). */
const idOf = (seq: string | number | bigint) => `${String(seq)}-0`
const seqOf = (id: string | null): string => (id === null ? "0" : (id.split("-")[0] ?? "0"))

const tryQuery = <A>(operation: string, run: () => Promise<A>) =>
  Effect.tryPromise({ try: run, catch: (cause) => new InboxUnavailable({ operation, cause }) })

/** Numbers the entry under the row lock of the bot's head row (see makePostgresInbox) and stores it. */
const append = async (tx: SqlTx, botId: string, updateJson: string): Promise<string> => {
  const head = await tx.query<{ seq: string }>(
    `INSERT INTO inbox_heads (bot_id, last_seq) VALUES ($1, 1)
     ON CONFLICT (bot_id) DO UPDATE SET last_seq = inbox_heads.last_seq + 1
     RETURNING last_seq::text AS seq`,
    [botId]
  )
  const seq = head.rows[0]!.seq
  await tx.query("INSERT INTO inbox_entries (bot_id, seq, update, received_at) VALUES ($1, $2::bigint, $3::jsonb, now())", [botId, seq, updateJson])
  return idOf(seq)
}

/** Timestamps come back as text (typeParsing.ts): have Postgres write them as ISO-8601. */
const ISO = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`

/**
 * Per-bot inboxes in Postgres (embedded mode on PGlite, or any node with only a database).
 *
 * Guarantees (those of InboxService): `enqueue` resolves after its transaction committed; a bot's
 * entries are numbered under the row lock of the bot's head row, so seq order is commit order and
 * `readAfter(cursor)` can never miss an entry committed later with a smaller seq; trimmed seqs are
 * never reused (the head keeps counting). `waitFor` is woken at once by enqueues of this process
 * and otherwise looks again every `pollMs`.
 */
export const makePostgresInbox = (o: PostgresInboxOptions): InboxService => {
  const { sql } = o
  const pollMs = o.pollMs ?? 250
  const waiters = new Map<string, Set<() => void>>()
  const wake = (botId: string) => {
    for (const w of waiters.get(botId) ?? []) w()
  }

  const readAfter = (botId: string, after: string | null, count: number) =>
    tryQuery("readAfter", async () => {
      const { rows } = await sql.query<{ seq: string; update: unknown; received_at: string }>(
        `SELECT seq::text AS seq, update, ${ISO("received_at")} AS received_at FROM inbox_entries WHERE bot_id = $1 AND seq > $2::bigint ORDER BY inbox_entries.seq LIMIT $3`,
        [botId, seqOf(after), count]
      )
      return rows.map((r): InboxEntry => ({ id: idOf(r.seq), update: r.update, receivedAt: r.received_at }))
    })

  const hasAfter = (botId: string, after: string | null) =>
    tryQuery("waitFor", async () => {
      const { rows } = await sql.query("SELECT 1 FROM inbox_entries WHERE bot_id = $1 AND seq > $2::bigint LIMIT 1", [botId, seqOf(after)])
      return rows.length > 0
    })

  /** Sleeps up to `ms`, ending early when this process enqueues for the bot. */
  const nap = (botId: string, ms: number) =>
    Effect.async<void>((resume) => {
      const set = waiters.get(botId) ?? new Set()
      waiters.set(botId, set)
      const done = () => {
        clearTimeout(timer)
        set.delete(done)
        if (set.size === 0) waiters.delete(botId)
        resume(Effect.void)
      }
      const timer = setTimeout(done, ms)
      set.add(done)
      return Effect.sync(() => {
        clearTimeout(timer)
        set.delete(done)
        if (set.size === 0) waiters.delete(botId)
      })
    })

  return {
    enqueue: (botId, update) =>
      Effect.suspend((): Effect.Effect<string, InboxUnavailable | InvalidUpdate> => {
        const bad = checkUpdate(botId, update)
        if (bad) return Effect.fail(bad)
        return tryQuery("enqueue", () => sql.transaction((tx) => append(tx, botId, JSON.stringify(update)))).pipe(Effect.tap(() => Effect.sync(() => wake(botId))))
      }),
    readAfter,
    waitFor: (botId, after, maxWaitMs) =>
      Effect.gen(function* () {
        const until = Date.now() + maxWaitMs
        for (;;) {
          if (yield* hasAfter(botId, after)) return
          const left = until - Date.now()
          if (left <= 0) return
          yield* nap(botId, Math.min(left, pollMs))
        }
      }),
    headId: (botId) =>
      tryQuery("headId", async () => {
        const { rows } = await sql.query<{ seq: string }>("SELECT max(seq)::text AS seq FROM inbox_entries WHERE bot_id = $1", [botId])
        return rows[0]?.seq ? idOf(rows[0].seq) : null
      }),
    lag: (botId, after, cap = 10_000) =>
      tryQuery("lag", async () => {
        const { rows } = await sql.query<{ n: string | number }>(
          "SELECT count(*)::int AS n FROM (SELECT 1 FROM inbox_entries WHERE bot_id = $1 AND seq > $2::bigint LIMIT $3) AS waiting",
          [botId, seqOf(after), cap]
        )
        return Number(rows[0]?.n ?? 0)
      }),
    trim: (botId, upTo) =>
      tryQuery("trim", async () => {
        await sql.query("DELETE FROM inbox_entries WHERE bot_id = $1 AND seq <= $2::bigint", [botId, seqOf(upTo)])
      }),
    deadLetter: (botId, entry, reason) =>
      tryQuery("deadLetter", async () => {
        await sql.query(
          `INSERT INTO inbox_dead_letters (bot_id, entry_id, update, reason, at) VALUES ($1, $2, $3::jsonb, $4, now())
           ON CONFLICT (bot_id, entry_id) DO UPDATE SET reason = EXCLUDED.reason, at = EXCLUDED.at`,
          [botId, entry.id, JSON.stringify(entry.update), reason]
        )
      }),
    readDeadLetters: (botId) =>
      tryQuery("readDeadLetters", async () => {
        const { rows } = await sql.query<{ entry_id: string; update: unknown; reason: string; at: string }>(
          `SELECT entry_id, update, reason, ${ISO("at")} AS at FROM inbox_dead_letters WHERE bot_id = $1 ORDER BY inbox_dead_letters.at, entry_id`,
          [botId]
        )
        return rows.map((r): InboxDeadLetter => ({ entryId: r.entry_id, update: r.update, reason: r.reason, at: r.at }))
      }),
    retryDeadLetter: (botId, entryId) =>
      tryQuery("retryDeadLetter", () =>
        sql.transaction(async (tx) => {
          // the DELETE's row lock makes a concurrent retry of the same entry find nothing
          const gone = await tx.query<{ update: unknown }>("DELETE FROM inbox_dead_letters WHERE bot_id = $1 AND entry_id = $2 RETURNING update", [botId, entryId])
          const row = gone.rows[0]
          return row ? append(tx, botId, JSON.stringify(row.update)) : null
        })
      ).pipe(
        Effect.tap((id) =>
          Effect.sync(() => {
            if (id !== null) wake(botId)
          })
        )
      ),
    dropDeadLetter: (botId, entryId) =>
      tryQuery("dropDeadLetter", async () => (await sql.query("DELETE FROM inbox_dead_letters WHERE bot_id = $1 AND entry_id = $2", [botId, entryId])).rowCount),
    close: Effect.sync(() => {
      for (const set of waiters.values()) for (const w of [...set]) w()
    })
  }
}
