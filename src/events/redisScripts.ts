import type { ChainableCommander } from "ioredis"
import type { RedisClient } from "../health/redisHealth.js"
import type { EncodedEvent } from "./codec.js"
import type { AppendRequest } from "./eventLog.js"

/*
 * The Lua scripts of the Redis event log. Each touches the keys of ONE partition (same hash tag),
 * so it runs atomically on one node, in Redis Cluster too. Scripts never raise errors for
 * expected outcomes (stale fence, wrong version, lease taken): they return a status code, so a
 * refusal inside a pipeline is a value, not an exception.
 *
 * Time comes from the server's TIME, never from a node's clock: lease expiry is judged by one clock.
 *
 * Bot stream entry ids are `<version>-0`. A version is then directly addressable in O(log n) by
 * XRANGE/XREVRANGE/XTRIM MINID (`XRANGE key 3 5` in redis-cli reads versions 3..5), and Redis
 * itself refuses an entry id not above the last one, a second guard behind the version check.
 * The stream's last-generated id survives trimming, so the version is never lost even when every
 * entry has been trimmed away. The partition-log position of each event is kept in field `pos`.
 */

/** Reads a bot stream's version: the last entry's id, or the last-generated id of an emptied stream. */
const currentVersion = `
local function current_version(key)
  local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
  if #last > 0 then return tonumber(string.match(last[1][1], '^(%d+)')) end
  if redis.call('EXISTS', key) == 0 then return 0 end
  local info = redis.call('XINFO', 'STREAM', key)
  for j = 1, #info, 2 do
    if info[j] == 'last-generated-id' then return tonumber(string.match(info[j + 1], '^(%d+)')) end
  end
  return 0
end
`

const serverNow = `
local function server_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

/** Status codes the append script returns as the first element of its reply. */
export const APPEND_OK = 0
export const APPEND_STALE_FENCE = 1
export const APPEND_WRONG_VERSION = 2

/**
 * KEYS: bot stream, partition log, lease.
 * ARGV: expectedVersion, fence, eventCount, botId, runCount; then runCount runs of 7 arguments
 * (eventsInRun, type, schemaVersion, occurredAt, correlationId, causationId, actor): consecutive
 * events sharing these fields; then 2 arguments per event (eventId, data), in order.
 * Reply: {0, version, position...} | {1, currentFence} | {2, actualVersion}.
 * A lease allows appends iff it was issued, is not released, and its fence equals the given one.
 * Expiry is deliberately not checked here: the fence alone makes a stale writer harmless.
 *
 * Field names, botId and `v` are not sent per event: the script fills them into one reused field
 * list, so an import of 50k events sends 100k arguments plus a run or two instead of a million,
 * and Redis parses and interns that many fewer strings. The entries written are the same as
 * before, field for field and in the same order (codec.ts FIELD_NAMES; the bot stream adds `pos` first).
 */
const appendLua = `${currentVersion}
local h = redis.call('HMGET', KEYS[3], 'nodeId', 'fence')
local held = h[1] and h[1] ~= ''
local fence = tonumber(h[2]) or 0
if not held then return {${APPEND_STALE_FENCE}, 0} end
if fence ~= tonumber(ARGV[2]) then return {${APPEND_STALE_FENCE}, fence} end
local actual = current_version(KEYS[1])
if actual ~= tonumber(ARGV[1]) then return {${APPEND_WRONG_VERSION}, actual} end
local n = tonumber(ARGV[3])
local runs = tonumber(ARGV[5])
local reply = {${APPEND_OK}, actual + n}
local f = {'pos', '', 'eventId', '', 'botId', ARGV[4], 'v', '', 'type', '', 'schemaVersion', '', 'occurredAt', '',
  'correlationId', '', 'causationId', '', 'actor', '', 'data', ''}
local r = 6
local e = 6 + runs * 7
local k = 0
for _ = 1, runs do
  f[10] = ARGV[r + 1]
  f[12] = ARGV[r + 2]
  f[14] = ARGV[r + 3]
  f[16] = ARGV[r + 4]
  f[18] = ARGV[r + 5]
  f[20] = ARGV[r + 6]
  for _ = 1, tonumber(ARGV[r]) do
    k = k + 1
    local v = tostring(actual + k)
    f[4] = ARGV[e]
    f[8] = v
    f[22] = ARGV[e + 1]
    e = e + 2
    local pos = redis.call('XADD', KEYS[2], '*', unpack(f, 3))
    f[2] = pos
    redis.call('XADD', KEYS[1], v .. '-0', unpack(f))
    reply[k + 2] = pos
  end
  r = r + 7
end
return reply
`

/** An append's arguments for `bfAppend`, in the layout the script reads. */
export interface PreparedAppend {
  readonly req: AppendRequest
  readonly head: ReadonlyArray<string | number>
  readonly runs: ReadonlyArray<string | number>
  readonly events: ReadonlyArray<string>
}

/**
 * Lays validated events out as the append script's arguments. Pure; one pass, and no per-event
 * arrays or objects: on an import this runs for 50k events at a time.
 */
export const appendArgs = (req: AppendRequest, encoded: ReadonlyArray<EncodedEvent>): PreparedAppend => {
  const runs: Array<string | number> = []
  const events: string[] = new Array<string>(encoded.length * 2)
  let run = -1
  let prev: EncodedEvent | undefined
  for (let i = 0; i < encoded.length; i++) {
    const e = encoded[i]!
    if (
      prev === undefined ||
      e.type !== prev.type ||
      e.schemaVersion !== prev.schemaVersion ||
      e.occurredAt !== prev.occurredAt ||
      e.correlationId !== prev.correlationId ||
      e.causationId !== prev.causationId ||
      e.actor !== prev.actor
    ) {
      run = runs.length
      runs.push(0, e.type, String(e.schemaVersion), e.occurredAt, e.correlationId, e.causationId, e.actor)
      prev = e
    }
    runs[run] = (runs[run] as number) + 1
    events[2 * i] = e.eventId
    events[2 * i + 1] = e.data
  }
  // versions are known up front: the script writes them only if the stream is at expectedVersion
  const head = [req.expectedVersion, req.fence, encoded.length, req.botId, runs.length / 7]
  return { req, head, runs, events }
}

const versionLua = `${currentVersion}
return current_version(KEYS[1])
`

/**
 * KEYS: lease. ARGV: nodeId, ttlMs. Reply: {fence, expiresAt} or nil when another node holds it.
 * Free (never issued or released) or expired-and-someone-else's: the new holder gets fence + 1.
 * Still ours (even expired, as long as nobody took it since): same fence, new expiry.
 * The counter is never reset, so a fence is never issued twice.
 */
const acquireLeaseLua = `${serverNow}
local now = server_now()
local h = redis.call('HMGET', KEYS[1], 'nodeId', 'fence', 'expiresAt')
local node = h[1] or ''
local fence = tonumber(h[2]) or 0
local exp = tonumber(h[3]) or 0
if node ~= '' and node ~= ARGV[1] and exp > now then return nil end
if node ~= ARGV[1] then fence = fence + 1 end
local expires = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'nodeId', ARGV[1], 'fence', fence, 'expiresAt', expires)
return {fence, expires}
`

/** KEYS: lease. ARGV: nodeId, fence, ttlMs. Reply: new expiresAt, or nil if the lease is no longer ours. */
const renewLeaseLua = `${serverNow}
local h = redis.call('HMGET', KEYS[1], 'nodeId', 'fence')
if not h[1] or h[1] == '' or h[1] ~= ARGV[1] or tonumber(h[2]) ~= tonumber(ARGV[2]) then return nil end
local expires = server_now() + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'expiresAt', expires)
return expires
`

/** KEYS: lease. ARGV: fence. Marks the lease free (nodeId '') and keeps the fence counter. Reply: 1 | 0. */
const releaseLeaseLua = `
local h = redis.call('HMGET', KEYS[1], 'nodeId', 'fence')
if not h[1] or h[1] == '' or tonumber(h[2]) ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'nodeId', '', 'expiresAt', 0)
return 1
`

/**
 * KEYS: partition log. ARGV: group, consumer, minIdleMs, count.
 * Reply: {entries, trimmedIds, deliveryCounts}. Entries trimmed while pending (Redis 7 returns
 * their ids as XAUTOCLAIM's third element) are acked here, so they can never loop.
 */
const reclaimLua = `
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4])
local entries = {}
local trimmed = r[3] or {}
for _, e in ipairs(r[2]) do
  if type(e) == 'table' and type(e[2]) == 'table' then entries[#entries + 1] = e
  elseif type(e) == 'table' then trimmed[#trimmed + 1] = e[1] end
end
if #trimmed > 0 then redis.call('XACK', KEYS[1], ARGV[1], unpack(trimmed)) end
local counts = {}
for k, e in ipairs(entries) do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)
  counts[k] = (p[1] and p[1][4]) or 1
end
return {entries, trimmed, counts}
`

/**
 * KEYS: dead-letter stream, partition log. ARGV: group, position, reason, deliveryCount, raw JSON.
 * Writes the dead letter and acks the entry in one step: it is never both lost and acked.
 */
const deadLetterLua = `
local id = redis.call('XADD', KEYS[1], '*', 'group', ARGV[1], 'position', ARGV[2], 'reason', ARGV[3], 'deliveryCount', ARGV[4], 'raw', ARGV[5])
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
return id
`

type Reply<T> = Promise<T>

/** The scripts as typed commands on a client or a pipeline (ioredis `defineCommand`: EVALSHA, EVAL on NOSCRIPT). */
export interface ScriptCommands {
  /**
   * Keys and arguments go as arrays (ioredis flattens them one level): spreading a large import's
   * arguments would overflow the stack, and separate arrays save concatenating them.
   */
  bfAppend(
    keys: ReadonlyArray<string>,
    head: ReadonlyArray<string | number>,
    runs: ReadonlyArray<string | number>,
    events: ReadonlyArray<string>
  ): Reply<Array<number | string>>
  bfVersion(stream: string): Reply<number>
  bfAcquireLease(lease: string, nodeId: string, ttlMs: number): Reply<[number, number] | null>
  bfRenewLease(lease: string, nodeId: string, fence: number, ttlMs: number): Reply<number | null>
  bfReleaseLease(lease: string, fence: number): Reply<number>
  bfReclaim(log: string, group: string, consumer: string, minIdleMs: number, count: number): Reply<
    [Array<[string, string[]]>, string[], number[]]
  >
  bfDeadLetter(dlq: string, log: string, group: string, position: string, reason: string, deliveryCount: number, raw: string): Reply<string>
}

/** Same commands queued on a pipeline: each returns the pipeline. */
export type PipelineScriptCommands = {
  [K in keyof ScriptCommands]: (...args: Parameters<ScriptCommands[K]>) => ChainableCommander
}

const definitions: Record<keyof ScriptCommands, { numberOfKeys: number; lua: string; readOnly?: boolean }> = {
  bfAppend: { numberOfKeys: 3, lua: appendLua },
  bfVersion: { numberOfKeys: 1, lua: versionLua, readOnly: true },
  bfAcquireLease: { numberOfKeys: 1, lua: acquireLeaseLua },
  bfRenewLease: { numberOfKeys: 1, lua: renewLeaseLua },
  bfReleaseLease: { numberOfKeys: 1, lua: releaseLeaseLua },
  bfReclaim: { numberOfKeys: 1, lua: reclaimLua },
  bfDeadLetter: { numberOfKeys: 2, lua: deadLetterLua }
}

/**
 * Registers the scripts on a client (idempotent) and returns it typed. ioredis sends EVALSHA and
 * falls back to EVAL when the server answers NOSCRIPT (after a restart or SCRIPT FLUSH), in
 * pipelines too, so scripts reload themselves.
 */
export const withScripts = (redis: RedisClient): RedisClient & ScriptCommands => {
  for (const [name, def] of Object.entries(definitions)) {
    if (!(name in redis.scriptsSet)) redis.defineCommand(name, def)
  }
  return redis as RedisClient & ScriptCommands
}

/** A pipeline of a client that went through `withScripts`, typed with the script commands. */
export const scriptedPipeline = (redis: RedisClient & ScriptCommands): ChainableCommander & PipelineScriptCommands =>
  redis.pipeline() as ChainableCommander & PipelineScriptCommands
