import { Effect } from "effect"
import type { RedisClient } from "../health/redisHealth.js"
import { openRedis } from "../health/redisHealth.js"
import { partitionOf, redisKeys } from "../events/partition.js"
import { InboxUnavailable, checkUpdate } from "./inbox.js"
import { makeInboxReaders } from "./redisInboxReaders.js"
import type { StreamEntry } from "./redisInboxReaders.js"
import type { InvalidUpdate } from "./inbox.js"
import type { InboxDeadLetter, InboxEntry, InboxService } from "./inbox.js"

export interface RedisInboxOptions {
  readonly url?: string
  /** A client the caller owns (not closed by `close`); else one is opened from `url`. */
  readonly redis?: RedisClient
  readonly prefix?: string
  readonly partitions?: number
}

const field = (fields: ReadonlyArray<string>, name: string): string | undefined => {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1]
  return undefined
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

/** Deletes every copy of a dead letter (KEYS[1] the dead-letter stream, ARGV[1] its inbox entry id); the count. */
const DROP_DEAD_LETTER = `
local entries = redis.call('XRANGE', KEYS[1], '-', '+')
local n = 0
for _, e in ipairs(entries) do
  local f = e[2]
  for i = 1, #f, 2 do
    if f[i] == 'entryId' and f[i + 1] == ARGV[1] then
      redis.call('XDEL', KEYS[1], e[1])
      n = n + 1
      break
    end
  end
end
return n
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
 * `waitFor` is served by one blocking reader per partition that has waiters
 * (`redisInboxReaders.ts`): a single XREAD BLOCK over the inboxes of that partition's waiting
 * bots, re-issued (CLIENT UNBLOCK) when a new bot of the partition starts waiting. So a thousand
 * idle bots cost at most one connection per partition, not a thousand, and every XREAD names keys
 * of one hash tag only, as Redis Cluster requires.
 */
export const makeRedisInbox = (options: RedisInboxOptions = {}): InboxService => {
  const prefix = options.prefix ?? "bf"
  const partitions = options.partitions ?? 16
  const owned = options.redis === undefined
  const redis = options.redis ?? openRedis(options.url ?? "redis://127.0.0.1:6379", "inbox", { maxRetriesPerRequest: 2 })
  const keyOf = (botId: string) => redisKeys(prefix, partitionOf(botId, partitions)).inbox(botId)
  const deadKeyOf = (botId: string) => `${keyOf(botId)}:dead`
  const call = <A>(operation: string, f: () => Promise<A>) =>
    Effect.tryPromise({ try: f, catch: (cause) => new InboxUnavailable({ operation, cause }) })

  const readers = makeInboxReaders(redis, toEntry)

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
        const wake = (entries?: ReadonlyArray<InboxEntry>) => resume(Effect.succeed(entries))
        return Effect.sync(readers.wait(partitionOf(botId, partitions), keyOf(botId), after ?? "0-0", count, maxWaitMs, wake))
      }),
    headId: (botId) =>
      call("headId", async () => {
        const last = (await redis.xrevrange(keyOf(botId), "+", "-", "COUNT", 1)) as StreamEntry[]
        return last[0]?.[0] ?? null
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
    dropDeadLetter: (botId, entryId) => call("dropDeadLetter", async () => Number(await redis.eval(DROP_DEAD_LETTER, 1, deadKeyOf(botId), entryId))),
    close: Effect.promise(async () => {
      readers.close()
      if (owned) await redis.quit().catch(() => undefined)
    })
  }
}
