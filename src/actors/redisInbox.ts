import { randomUUID } from "node:crypto"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { partitionOf, redisKeys } from "../events/partition.js"
import { InboxUnavailable, checkUpdate } from "./inbox.js"
import type { InvalidUpdate } from "./inbox.js"
import type { InboxDeadLetter, InboxEntry, InboxService } from "./inbox.js"

export interface RedisInboxOptions {
  readonly url?: string
  /** A client the caller owns (not closed by `close`); else one is opened from `url`. */
  readonly redis?: Redis
  readonly prefix?: string
  readonly partitions?: number
}

type StreamEntry = [id: string, fields: string[]]

const field = (fields: ReadonlyArray<string>, name: string): string | undefined => {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1]
  return undefined
}

/**
 * XREAD's reply as [key, entries] pairs: RESP2 nests one pair per stream, while a RESP3 map
 * reaches us flattened as [key1, entries1, key2, entries2, ...].
 */
const streamsOf = (res: unknown): Array<[string, StreamEntry[]]> => {
  if (!Array.isArray(res) || res.length === 0) return []
  if (typeof res[0] !== "string") return res as Array<[string, StreamEntry[]]>
  const pairs: Array<[string, StreamEntry[]]> = []
  for (let i = 0; i + 1 < res.length; i += 2) pairs.push([res[i] as string, res[i + 1] as StreamEntry[]])
  return pairs
}

/*
 * Moves a dead letter back into its inbox atomically (KEYS[1] the dead-letter stream, KEYS[2] the
 * inbox, same hash tag; ARGV[1] the inbox entry id it was dead-lettered as). Every copy of that
 * entry is deleted (a crash between dead-lettering and recording can leave two) and the update is
 * appended once; nothing is appended when none was there. The dead-letter stream of one bot is
 * short (only updates its handler threw on), so a scan is fine.
 */
const RETRY_DEAD_LETTER = `
local entries = redis.call('XRANGE', KEYS[1], '-', '+')
local update = false
for _, e in ipairs(entries) do
  local f = e[2]
  local id, u = nil, nil
  for i = 1, #f, 2 do
    if f[i] == 'entryId' then id = f[i + 1] elseif f[i] == 'u' then u = f[i + 1] end
  end
  if id == ARGV[1] and u ~= nil then
    redis.call('XDEL', KEYS[1], e[1])
    if not update then update = u end
  end
end
if not update then return false end
return redis.call('XADD', KEYS[2], '*', 'u', update)
`

/** Entry ids are `<server ms>-<seq>`: the receive time is the server's clock at XADD, for every node alike. */
const receivedAtOf = (id: string) => new Date(Number(id.split("-")[0])).toISOString()

const toEntry = ([id, fields]: StreamEntry): InboxEntry => {
  let update: unknown = null
  try {
    update = JSON.parse(field(fields, "u") ?? "null")
  } catch {
    // a hand-written entry that is not JSON: the decider records it as failed, the bot goes on
  }
  return { id, update, receivedAt: receivedAtOf(id) }
}

/**
 * Inboxes as Redis streams, `bf:{pNN}:inbox:<botId>` (DESIGN.md), dead letters beside them in
 * `...:inbox:<botId>:dead` (same hash tag).
 *
 * `waitFor` is served by ONE blocking connection per process: a single XREAD BLOCK over every
 * waiting bot's inbox, re-issued (CLIENT UNBLOCK) when a new bot starts waiting. So a thousand
 * idle bots cost one connection, not a thousand. Multi-key XREAD needs one node: on Redis Cluster
 * this would have to be one reader per slot (not built).
 */
export const makeRedisInbox = (options: RedisInboxOptions = {}): InboxService => {
  const prefix = options.prefix ?? "bf"
  const partitions = options.partitions ?? 16
  const owned = options.redis === undefined
  const redis = options.redis ?? new Redis(options.url ?? "redis://127.0.0.1:6379", { maxRetriesPerRequest: 2 })
  const keyOf = (botId: string) => redisKeys(prefix, partitionOf(botId, partitions)).inbox(botId)
  const deadKeyOf = (botId: string) => `${keyOf(botId)}:dead`
  const call = <A>(operation: string, f: () => Promise<A>) =>
    Effect.tryPromise({ try: f, catch: (cause) => new InboxUnavailable({ operation, cause }) })

  // --- the shared blocking reader behind waitFor ---
  interface Waiter {
    after: string
    count: number
    readonly wakes: Set<(entries?: ReadonlyArray<InboxEntry>) => void>
  }
  const waiting = new Map<string, Waiter>()
  let blocker: Redis | null = null
  let blockerId: number | null = null
  /** Names the reader's connection, so its id can be found again after a reconnect. */
  const blockerName = `botfleet-inbox-reader-${randomUUID()}`
  let looping = false
  let inFlight = false
  let unblockQueued = false
  let closed = false

  const wakeAll = (key: string, entries?: ReadonlyArray<InboxEntry>) => {
    const w = waiting.get(key)
    if (!w) return
    waiting.delete(key)
    // entries go to one waiter only (one actor per bot); any other just reads again
    let given = false
    for (const wake of w.wakes) {
      wake(given ? undefined : entries)
      given = true
    }
  }
  const loop = async () => {
    looping = true
    try {
      if (!blocker) {
        const b = redis.duplicate({ connectionName: blockerName })
        blocker = b
        // After a reconnect the connection has a new id, and ioredis re-sends the pending XREAD
        // BLOCK before the 'ready' listeners run, so CLIENT ID on the reader itself would queue
        // behind the block. Look the id up by the reader's name (set again in every handshake)
        // over the other connection; until then no unblock is sent, and the read ends by its
        // BLOCK timeout as before.
        b.on("close", () => {
          blockerId = null
        })
        b.on("ready", () => void refreshBlockerId())
        blockerId = Number(await b.client("ID"))
      }
      while (waiting.size > 0 && !closed) {
        const keys = [...waiting.keys()]
        const ids = keys.map((k) => waiting.get(k)!.after)
        const count = Math.max(...keys.map((k) => waiting.get(k)!.count))
        inFlight = true
        unblockQueued = false
        let res: unknown
        try {
          res = await blocker.call("XREAD", ["COUNT", count, "BLOCK", 2000, "STREAMS", ...keys, ...ids])
        } finally {
          inFlight = false
        }
        for (const [key, entries] of streamsOf(res)) {
          // hand the entries over only if the waiter still waits after the id they were read after
          const w = waiting.get(key)
          const asked = ids[keys.indexOf(key)]
          wakeAll(key, w && w.after === asked ? entries.slice(0, w.count).map(toEntry) : undefined)
        }
      }
    } catch {
      // the connection failed or closed: wake everyone, they read again and come back if needed
      for (const key of [...waiting.keys()]) wakeAll(key)
    } finally {
      looping = false
    }
  }
  const refreshBlockerId = async () => {
    try {
      const list = String(await redis.call("CLIENT", "LIST", "TYPE", "normal"))
      const line = list.split("\n").find((l) => l.includes(` name=${blockerName} `))
      const id = line ? /^id=(\d+)/.exec(line)?.[1] : undefined
      if (id !== undefined && blocker?.status === "ready") blockerId = Number(id)
    } catch {
      // the other connection is down too: no unblock until the next 'ready'
    }
  }
  const nudge = () => {
    if (!looping) {
      void loop()
    } else if (inFlight && !unblockQueued && blockerId !== null) {
      // coalesce: one unblock per XREAD round, sent after this tick's registrations
      unblockQueued = true
      setImmediate(() => {
        if (inFlight && blockerId !== null && !closed) redis.client("UNBLOCK", blockerId).catch(() => undefined)
      })
    }
  }

  return {
    enqueue: (botId, update) =>
      Effect.suspend((): Effect.Effect<string, InboxUnavailable | InvalidUpdate> => {
        const bad = checkUpdate(botId, update)
        return bad ? Effect.fail(bad) : call("enqueue", async () => (await redis.xadd(keyOf(botId), "*", "u", JSON.stringify(update)))!)
      }),
    readAfter: (botId, after, count) =>
      call("readAfter", async () => {
        const entries = (await redis.xrange(keyOf(botId), after === null ? "-" : `(${after}`, "+", "COUNT", count)) as StreamEntry[]
        return entries.map(toEntry)
      }),
    waitFor: (botId, after, maxWaitMs, count = 32) =>
      Effect.async<ReadonlyArray<InboxEntry> | void>((resume) => {
        if (closed) return resume(Effect.void)
        const key = keyOf(botId)
        const w: Waiter = waiting.get(key) ?? { after: after ?? "0-0", count, wakes: new Set() }
        w.after = after ?? "0-0"
        w.count = count
        waiting.set(key, w)
        const done = (entries?: ReadonlyArray<InboxEntry>) => {
          clearTimeout(timer)
          w.wakes.delete(done)
          if (w.wakes.size === 0 && waiting.get(key) === w) waiting.delete(key)
          resume(Effect.succeed(entries))
        }
        const timer = setTimeout(() => done(), maxWaitMs)
        w.wakes.add(done)
        nudge()
        return Effect.sync(() => {
          clearTimeout(timer)
          w.wakes.delete(done)
          if (w.wakes.size === 0 && waiting.get(key) === w) waiting.delete(key)
        })
      }),
    lag: (botId, after, cap = 10_000) =>
      call("lag", async () => {
        const entries = await redis.xrange(keyOf(botId), after === null ? "-" : `(${after}`, "+", "COUNT", cap)
        return entries.length
      }),
    trim: (botId, upTo) =>
      call("trim", async () => {
        // MINID keeps ids >= its argument, so trim at the next possible id to drop `upTo` itself
        const [ms, seq] = upTo.split("-")
        await redis.xtrim(keyOf(botId), "MINID", `${ms}-${Number(seq ?? 0) + 1}`)
      }),
    deadLetter: (botId, entry, reason) =>
      call("deadLetter", async () => {
        await redis.xadd(deadKeyOf(botId), "*", "entryId", entry.id, "u", JSON.stringify(entry.update), "reason", reason)
      }),
    readDeadLetters: (botId) =>
      call("readDeadLetters", async () => {
        const entries = (await redis.xrange(deadKeyOf(botId), "-", "+")) as StreamEntry[]
        return entries.map(([id, fields]): InboxDeadLetter => {
          const e = toEntry([id, fields])
          return { entryId: field(fields, "entryId") ?? "", update: e.update, reason: field(fields, "reason") ?? "", at: e.receivedAt }
        })
      }),
    retryDeadLetter: (botId, entryId) =>
      call("retryDeadLetter", async () => {
        const id = await redis.eval(RETRY_DEAD_LETTER, 2, deadKeyOf(botId), keyOf(botId), entryId)
        return typeof id === "string" ? id : null
      }),
    close: Effect.promise(async () => {
      closed = true
      for (const key of [...waiting.keys()]) wakeAll(key)
      blocker?.disconnect()
      if (owned) await redis.quit().catch(() => undefined)
    })
  }
}
