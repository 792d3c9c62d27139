import { randomUUID } from "node:crypto"
import { Effect, Either, Layer } from "effect"
import { decodeFields, encodeAppend, toFields, withPosition } from "./codec.js"
import type { EventFields } from "./codec.js"
import { StaleFence, WrongExpectedVersion } from "./errors.js"
import type { AppendError } from "./errors.js"
import { EventLog } from "./eventLog.js"
import type { AppendRequest, AppendResult, DeadLetter, Delivery, EventLogService, GroupProgress, Lease, RawFields } from "./eventLog.js"
import { partitionOf } from "./partition.js"
import type { RecordedEvent } from "./schema/envelope.js"

interface Entry {
  readonly seq: number
  readonly fields: RawFields
  /** When it was appended (the log's clock), ISO-8601: formatted once per append, not per read. */
  readonly at: string
}
interface Pending {
  consumer: string
  deliveredAt: number
  count: number
}
interface Group {
  lastDelivered: number
  readonly pending: Map<number, Pending>
}
interface LeaseRow {
  nodeId: string
  fence: number
  expiresAt: number
  released: boolean
}

export interface MemoryEventLogOptions {
  readonly partitions?: number
  /** The clock leases and idle times are measured with; tests pass a controllable one. */
  readonly now?: () => number
}

/**
 * The in-memory adapter: same semantics as Redis Streams (it stores the same encoded fields and
 * decodes on read), for unit tests of pure code and for replay. Not durable, one process only.
 */
export const makeMemoryEventLog = (options: MemoryEventLogOptions = {}): EventLogService & {
  /** Test hook: puts raw fields into a partition log as a foreign writer could. */
  readonly injectRaw: (partition: number, fields: RawFields) => string
} => {
  const partitions = options.partitions ?? 16
  const now = options.now ?? Date.now
  const streams = new Map<string, Entry[]>()
  const logs = Array.from({ length: partitions }, () => [] as Entry[])
  const groups = new Map<string, Group>()
  const deadLetters = Array.from({ length: partitions }, () => [] as DeadLetter[])
  const leases = new Map<string, LeaseRow>()
  let seq = 0

  const pOf = (botId: string) => partitionOf(botId, partitions)
  /** Index of the first entry with seq > `after` (entries are in seq order): reads stay O(log n + k). */
  const firstAfter = (log: ReadonlyArray<Entry>, after: number) => {
    let lo = 0
    let hi = log.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (log[mid]!.seq > after) hi = mid
      else lo = mid + 1
    }
    return lo
  }
  /** Versions of streams trimmed to nothing: a stream's version survives its trims, as on Redis. */
  const trimmedAt = new Map<string, number>()
  const versionOf = (botId: string) => {
    const s = streams.get(botId)
    return s && s.length > 0 ? Number(s[s.length - 1]!.fields["v"]) : (trimmedAt.get(botId) ?? 0)
  }
  const checkPartition = (p: number) => {
    if (!Number.isInteger(p) || p < 0 || p >= partitions) throw new RangeError(`partition ${p} is not in 0..${partitions - 1}`)
  }
  const toDelivery = (partition: number, e: Entry, deliveryCount: number): Delivery => ({
    partition,
    position: String(e.seq),
    deliveryCount,
    raw: e.fields,
    event: Either.map(decodeFields(e.fields), (env) => withPosition(env, String(e.seq), partition, e.at))
  })

  const appendOne = (req: AppendRequest): Either.Either<AppendResult, AppendError> => {
    const validated = encodeAppend(req, randomUUID)
    if (Either.isLeft(validated)) return Either.left(validated.left)
    const encoded = validated.right
    const lease = leases.get(req.botId)
    if (!lease || lease.released || lease.fence !== req.fence) {
      return Either.left(new StaleFence({ botId: req.botId, fence: req.fence, current: lease && !lease.released ? lease.fence : 0 }))
    }
    const actual = versionOf(req.botId)
    if (actual !== req.expectedVersion) {
      return Either.left(new WrongExpectedVersion({ botId: req.botId, expected: req.expectedVersion, actual }))
    }
    const partition = pOf(req.botId)
    const stream = streams.get(req.botId) ?? []
    streams.set(req.botId, stream)
    const positions: string[] = []
    const at = new Date(now()).toISOString()
    encoded.forEach((e, i) => {
      const fields: EventFields = toFields(req.botId, actual + i + 1, e)
      const entry = { seq: ++seq, fields, at }
      stream.push(entry)
      logs[partition]!.push(entry)
      positions.push(String(entry.seq))
    })
    return Either.right({ botId: req.botId, version: actual + encoded.length, positions })
  }

  const group = (partition: number, name: string) => {
    const g = groups.get(`${partition}/${name}`)
    if (!g) throw new Error(`no consumer group ${name} on partition ${partition}: call ensureGroup first`)
    return g
  }

  const service: EventLogService = {
    partitions,
    partitionOf: pOf,
    append: (req) => Effect.suspend(() => appendOne(req)),
    appendMany: (reqs) => Effect.sync(() => reqs.map(appendOne)),
    readStream: (botId, opts = {}) =>
      Effect.gen(function* () {
        const stream = streams.get(botId) ?? []
        const partition = pOf(botId)
        const limit = opts.limit ?? Number.MAX_SAFE_INTEGER
        const byVersion = (e: Entry) => Number(e.fields["v"])
        const picked =
          opts.direction === "backward"
            ? stream.filter((e) => opts.from === undefined || byVersion(e) <= opts.from).reverse().slice(0, limit)
            : stream.filter((e) => byVersion(e) >= (opts.from ?? 1)).slice(0, limit)
        const out: RecordedEvent[] = []
        for (const e of picked) {
          const env = yield* decodeFields(e.fields)
          out.push(withPosition(env, String(e.seq), partition, e.at))
        }
        return out
      }),
    streamVersion: (botId) => Effect.sync(() => versionOf(botId)),
    readPartition: (partition, opts = {}) =>
      Effect.sync(() => {
        checkPartition(partition)
        const after = opts.after === undefined ? 0 : Number(opts.after)
        const log = logs[partition]!
        const start = firstAfter(log, after)
        return log
          .slice(start, start + (opts.limit ?? Number.MAX_SAFE_INTEGER))
          .map((e) => toDelivery(partition, e, 1))
      }),
    ensureGroup: (partition, name, from = "start") =>
      Effect.sync(() => {
        checkPartition(partition)
        const key = `${partition}/${name}`
        if (groups.has(key)) return
        const log = logs[partition]!
        groups.set(key, { lastDelivered: from === "end" && log.length > 0 ? log[log.length - 1]!.seq : 0, pending: new Map() })
      }),
    readGroup: ({ partition, group: name, consumer, count }) =>
      Effect.sync(() => {
        const g = group(partition, name)
        const log = logs[partition]!
        const start = firstAfter(log, g.lastDelivered)
        const fresh = log.slice(start, start + count)
        const t = now()
        for (const e of fresh) {
          g.pending.set(e.seq, { consumer, deliveredAt: t, count: 1 })
          g.lastDelivered = e.seq
        }
        return fresh.map((e) => toDelivery(partition, e, 1))
      }),
    ack: (partition, name, positions) =>
      Effect.sync(() => {
        const g = group(partition, name)
        for (const p of positions) g.pending.delete(Number(p))
      }),
    reclaim: ({ partition, group: name, consumer, minIdleMs, count }) =>
      Effect.sync(() => {
        const g = group(partition, name)
        const t = now()
        const deliveries: Delivery[] = []
        const trimmedAcked: string[] = []
        const log = logs[partition]!
        const bySeq = { get: (q: number) => { const i = firstAfter(log, q - 1); return log[i]?.seq === q ? log[i] : undefined } }
        for (const [s, p] of [...g.pending.entries()].sort((a, b) => a[0] - b[0])) {
          if (deliveries.length + trimmedAcked.length >= count) break
          if (t - p.deliveredAt < minIdleMs) continue
          const entry = bySeq.get(s)
          if (!entry) {
            // trimmed while pending: Redis would return nil forever, so it is acked away here
            g.pending.delete(s)
            trimmedAcked.push(String(s))
            continue
          }
          p.consumer = consumer
          p.deliveredAt = t
          p.count += 1
          deliveries.push(toDelivery(partition, entry, p.count))
        }
        return { deliveries, trimmedAcked }
      }),
    pendingCount: (partition, name) => Effect.sync(() => group(partition, name).pending.size),
    groupProgress: (partition) =>
      Effect.sync(() => {
        checkPartition(partition)
        const out: GroupProgress[] = []
        for (const [key, g] of groups) {
          const [p, name] = [Number(key.slice(0, key.indexOf("/"))), key.slice(key.indexOf("/") + 1)]
          if (p !== partition) continue
          const oldest = g.pending.size === 0 ? null : Math.min(...g.pending.keys())
          out.push({ group: name, lastDelivered: g.lastDelivered === 0 ? null : String(g.lastDelivered), oldestPending: oldest === null ? null : String(oldest) })
        }
        return out.sort((a, b) => (a.group < b.group ? -1 : 1))
      }),
    deadLetter: ({ group: name, delivery, reason }) =>
      Effect.sync(() => {
        const list = deadLetters[delivery.partition]!
        list.push({
          partition: delivery.partition,
          id: String(++seq),
          group: name,
          position: delivery.position,
          reason,
          deliveryCount: delivery.deliveryCount,
          raw: delivery.raw,
          at: new Date(now()).toISOString()
        })
        group(delivery.partition, name).pending.delete(Number(delivery.position))
      }),
    readDeadLetters: (partition) => Effect.sync(() => [...deadLetters[partition]!]),
    trimPartition: (partition, below) =>
      Effect.sync(() => {
        const log = logs[partition]!
        const keep = log.filter((e) => e.seq >= Number(below))
        const removed = log.length - keep.length
        logs[partition] = keep
        return removed
      }),
    trimStream: (botId, belowVersion) =>
      Effect.sync(() => {
        const s = streams.get(botId) ?? []
        const keep = s.filter((e) => Number(e.fields["v"]) >= belowVersion)
        if (keep.length === 0 && s.length > 0) trimmedAt.set(botId, versionOf(botId))
        streams.set(botId, keep)
        return s.length - keep.length
      }),
    acquireLease: (botId, nodeId, ttlMs) =>
      Effect.sync(() => {
        const t = now()
        const row = leases.get(botId)
        if (row && !row.released && row.expiresAt > t && row.nodeId !== nodeId) return null
        const keep = row && !row.released && row.nodeId === nodeId
        const next: LeaseRow = { nodeId, fence: keep ? row.fence : (row?.fence ?? 0) + 1, expiresAt: t + ttlMs, released: false }
        leases.set(botId, next)
        return { botId, nodeId, fence: next.fence, expiresAt: next.expiresAt }
      }),
    renewLease: (lease, ttlMs) =>
      Effect.sync(() => {
        const row = leases.get(lease.botId)
        if (!row || row.released || row.nodeId !== lease.nodeId || row.fence !== lease.fence) return null
        row.expiresAt = now() + ttlMs
        return { ...lease, expiresAt: row.expiresAt }
      }),
    releaseLease: (lease) =>
      Effect.sync(() => {
        const row = leases.get(lease.botId)
        if (!row || row.released || row.fence !== lease.fence) return false
        row.released = true
        return true
      }),
    readLease: (botId) =>
      Effect.sync((): Lease | null => {
        const row = leases.get(botId)
        return row && !row.released ? { botId, nodeId: row.nodeId, fence: row.fence, expiresAt: row.expiresAt } : null
      }),
    close: Effect.void
  }
  return {
    ...service,
    injectRaw: (partition, fields) => {
      const entry = { seq: ++seq, fields, at: new Date(now()).toISOString() }
      logs[partition]!.push(entry)
      return String(entry.seq)
    }
  }
}

export const MemoryEventLogLive = (options?: MemoryEventLogOptions) => Layer.sync(EventLog, () => makeMemoryEventLog(options))
