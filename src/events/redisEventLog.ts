import { randomUUID } from "node:crypto"
import { Effect, Either, Layer } from "effect"
import type { RedisOptions } from "ioredis"
import { duplicateRedis, isCluster, openRedis } from "../health/redisHealth.js"
import type { RedisClient } from "../health/redisHealth.js"
import { argsToFields, decodeFields, encodeAppend, withPosition } from "./codec.js"
import { LogUnavailable, StaleFence, WrongExpectedVersion } from "./errors.js"
import type { InvalidEvent } from "./errors.js"
import type { AppendError } from "./errors.js"
import { EventLog } from "./eventLog.js"
import type { AppendRequest, AppendResult, DeadLetter, Delivery, EventLogService, Lease, RawFields } from "./eventLog.js"
import { partitionOf, redisKeys } from "./partition.js"
import { APPEND_OK, APPEND_STALE_FENCE, appendArgs, scriptedPipeline, withScripts } from "./redisScripts.js"
import type { PreparedAppend } from "./redisScripts.js"
import { makeBlockingPool } from "./redisBlockingPool.js"
import type { RecordedEvent } from "./schema/envelope.js"

export interface RedisEventLogOptions {
  /** A Redis URL (the log owns and closes the connection), or... */
  readonly url?: string
  /** ...a client the caller owns (not closed by `close`). */
  readonly redis?: RedisClient
  /** Options for the connections the log opens itself from `url`. */
  readonly redisOptions?: RedisOptions
  /** Isolates deployments and test suites (default "bf"). */
  readonly prefix?: string
  /** Partition count (default 16). Every node of a fleet must agree on it. */
  readonly partitions?: number
}

type StreamEntry = [id: string, fields: string[]]

const range = (redis: RedisClient, command: "xrange" | "xrevrange", key: string, start: string, end: string, limit: number | undefined) =>
  limit === undefined ? redis[command](key, start, end) : redis[command](key, start, end, "COUNT", limit)

const unavailable = (operation: string) => (cause: unknown) => new LogUnavailable({ operation, cause })

let lastMs = Number.NaN
let lastIso = ""
/**
 * A stream id's first part is the Redis server's time in ms when the entry was added: the event's
 * recorded time. The events of one append share their ms, so the last one formatted is kept:
 * formatting each (2–3 µs) would cost a long read several percent.
 */
const recordedAtOf = (id: string): string | undefined => {
  const dash = id.indexOf("-")
  const ms = dash > 0 ? Number(id.slice(0, dash)) : Number.NaN
  if (ms === lastMs) return lastIso
  if (!Number.isSafeInteger(ms)) return undefined
  lastMs = ms
  lastIso = new Date(ms).toISOString()
  return lastIso
}

/** XINFO GROUPS reply of one group, as flat name/value pairs. */
const groupInfo = (flat: ReadonlyArray<unknown>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1]
  return out
}

/**
 * The Redis Streams adapter of the event log (DESIGN.md "Redis layout").
 *
 * Guarantees: an append is ONE Lua call that checks the fence and the expected version and writes
 * every event to the bot stream and the partition log, so it is all or nothing and two writers can
 * never interleave; events are validated before any Redis call, so an invalid append writes
 * nothing; every key of a call shares the partition's hash tag (Redis Cluster ready).
 * Blocking group reads use their own connections so they never hold up appends.
 *
 * Redis is the fast log, not the system of record (docs/redis.md): the Postgres archive is.
 */
export const makeRedisEventLog = (options: RedisEventLogOptions = {}): Effect.Effect<EventLogService> =>
  Effect.sync(() => {
    const prefix = options.prefix ?? "bf"
    const partitions = options.partitions ?? 16
    const owned = options.redis === undefined
    const base = options.redis ?? openRedis(options.url ?? "redis://127.0.0.1:6379", "log", options.redisOptions ?? {})
    const redis = withScripts(base)
    const cluster = isCluster(base)
    const blocking = makeBlockingPool(() => duplicateRedis(base, "log-blocking-reads"))

    const pOf = (botId: string) => partitionOf(botId, partitions)
    const keysOf = (partition: number) => {
      if (!Number.isInteger(partition) || partition < 0 || partition >= partitions) {
        throw new RangeError(`partition ${partition} is not in 0..${partitions - 1}`)
      }
      return redisKeys(prefix, partition)
    }
    const call = <A>(operation: string, f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: unavailable(operation) })

    const toDelivery = (partition: number, [id, fields]: StreamEntry, deliveryCount: number): Delivery => {
      const raw = argsToFields(fields)
      return { partition, position: id, deliveryCount, raw, event: Either.map(decodeFields(raw), (env) => withPosition(env, id, partition, recordedAtOf(id))) }
    }

    /** Validates and encodes an append before Redis sees it: nothing is written for a bad request. */
    const prepare = (req: AppendRequest): Either.Either<PreparedAppend, InvalidEvent> => {
      const validated = encodeAppend(req, randomUUID)
      if (Either.isLeft(validated)) return Either.left(validated.left)
      return Either.right(appendArgs(req, validated.right))
    }

    const appendKeys = (botId: string) => {
      const k = keysOf(pOf(botId))
      return [k.stream(botId), k.log, k.lease(botId)] as const
    }

    const interpret = (req: AppendRequest, reply: ReadonlyArray<number | string>): Either.Either<AppendResult, AppendError> => {
      const [status, value] = reply as [number, number]
      if (status === APPEND_OK) {
        return Either.right({ botId: req.botId, version: Number(value), positions: reply.slice(2).map(String) })
      }
      if (status === APPEND_STALE_FENCE) return Either.left(new StaleFence({ botId: req.botId, fence: req.fence, current: Number(value) }))
      return Either.left(new WrongExpectedVersion({ botId: req.botId, expected: req.expectedVersion, actual: Number(value) }))
    }

    /** A plain loop, not a generator yielding each Either: on a 100k-event replay the per-yield cost was half the read. */
    const decodeStream = (botId: string, entries: ReadonlyArray<StreamEntry>): Effect.Effect<RecordedEvent[], InvalidEvent> =>
      Effect.suspend(() => {
        const partition = pOf(botId)
        const out: RecordedEvent[] = []
        for (const [, fields] of entries) {
          const raw = argsToFields(fields)
          const env = decodeFields(raw)
          if (Either.isLeft(env)) return Effect.fail(env.left)
          const pos = raw["pos"] ?? ""
          out.push(withPosition(env.right, pos, partition, recordedAtOf(pos)))
        }
        return Effect.succeed(out)
      })

    const toLease = (botId: string, nodeId: string, fence: number, expiresAt: number): Lease => ({ botId, nodeId, fence, expiresAt })

    const service: EventLogService = {
      partitions,
      partitionOf: pOf,

      append: (req) =>
        Effect.suspend(() => {
          const prepared = prepare(req)
          if (Either.isLeft(prepared)) return Effect.fail(prepared.left)
          return call("append", () => redis.bfAppend(appendKeys(req.botId), prepared.right.head, prepared.right.runs, prepared.right.events)).pipe(
            Effect.flatMap((reply) => interpret(req, reply))
          )
        }),

      appendMany: (reqs) =>
        Effect.suspend(() => {
          const prepared = reqs.map(prepare)
          // one pipeline (one round trip) on a plain Redis; in a cluster one per partition, since a
          // pipeline may only name keys its one node serves: the partitions' pipelines run side by
          // side, and one whose master is failing over fails alone (its appends LogUnavailable)
          const groups = new Map<number, { pipeline: ReturnType<typeof scriptedPipeline>; at: number[] }>()
          prepared.forEach((p, at) => {
            if (Either.isLeft(p)) return
            const g = cluster ? pOf(p.right.req.botId) : 0
            let group = groups.get(g)
            if (!group) groups.set(g, (group = { pipeline: scriptedPipeline(redis), at: [] }))
            group.pipeline.bfAppend(appendKeys(p.right.req.botId), p.right.head, p.right.runs, p.right.events)
            group.at.push(at)
          })
          if (groups.size === 0) return Effect.succeed(prepared.map((p) => p as Either.Either<never, AppendError>))
          const replies = new Map<number, [Error | null, unknown]>()
          const execGroup = async (group: { pipeline: ReturnType<typeof scriptedPipeline>; at: number[] }) => {
            let results: Array<[Error | null, unknown]> | null
            try {
              results = await group.pipeline.exec()
            } catch (e) {
              // a plain Redis: the whole batch fails as one LogUnavailable, as before
              if (!cluster) throw e
              results = group.at.map(() => [e instanceof Error ? e : new Error(String(e)), null])
            }
            group.at.forEach((at, i) => replies.set(at, results?.[i] ?? [new Error("no reply from Redis"), null]))
          }
          return call("appendMany", () => Promise.all([...groups.values()].map(execGroup))).pipe(
            Effect.map(() =>
              prepared.map((p, at): Either.Either<AppendResult, AppendError> => {
                if (Either.isLeft(p)) return Either.left(p.left)
                const [err, reply] = replies.get(at) ?? [new Error("no reply from Redis"), null]
                if (err) return Either.left(new LogUnavailable({ operation: "appendMany", cause: err }))
                return interpret(p.right.req, reply as Array<number | string>)
              })
            )
          )
        }),

      readStream: (botId, opts = {}) =>
        Effect.suspend(() => {
          if (opts.limit !== undefined && opts.limit <= 0) return Effect.succeed([])
          const key = keysOf(pOf(botId)).stream(botId)
          const backward = opts.direction === "backward"
          const start = backward ? (opts.from === undefined ? "+" : `${Math.floor(opts.from)}-0`) : `${Math.max(1, Math.floor(opts.from ?? 1))}-0`
          const end = backward ? "-" : "+"
          // plain XRANGE, not a script returning one JSON text: that halves the client's decoding
          // but costs Redis ~4x the time per entry and blocks it while it encodes, and Redis is
          // the one resource every node of the fleet shares
          const read = call("readStream", () => range(redis, backward ? "xrevrange" : "xrange", key, start, end, opts.limit))
          return read.pipe(Effect.flatMap((entries) => decodeStream(botId, entries as StreamEntry[])))
        }),

      streamVersion: (botId) => call("streamVersion", () => redis.bfVersion(keysOf(pOf(botId)).stream(botId))).pipe(Effect.map(Number)),

      readPartition: (partition, opts = {}) =>
        Effect.suspend(() => {
          if (opts.limit !== undefined && opts.limit <= 0) return Effect.succeed([])
          const key = keysOf(partition).log
          const start = opts.after === undefined ? "-" : `(${opts.after}`
          return call("readPartition", () => range(redis, "xrange", key, start, "+", opts.limit)).pipe(
            Effect.map((entries) => (entries as StreamEntry[]).map((e) => toDelivery(partition, e, 1)))
          )
        }),

      ensureGroup: (partition, group, from = "start") =>
        Effect.suspend(() => {
          const key = keysOf(partition).log
          return call("ensureGroup", async () => {
            try {
              await redis.xgroup("CREATE", key, group, from === "start" ? "0" : "$", "MKSTREAM")
            } catch (e) {
              // the group already exists: ensureGroup is idempotent
              if (!(e instanceof Error && e.message.startsWith("BUSYGROUP"))) throw e
            }
          })
        }),

      readGroup: ({ partition, group, consumer, count, blockMs }) =>
        Effect.suspend(() => {
          const key = keysOf(partition).log
          const read = (client: RedisClient) =>
            blockMs !== undefined && blockMs > 0
              ? client.xreadgroup("GROUP", group, consumer, "COUNT", count, "BLOCK", blockMs, "STREAMS", key, ">")
              : client.xreadgroup("GROUP", group, consumer, "COUNT", count, "STREAMS", key, ">")
          // a blocking read parks its connection: it gets one of its own so appends never wait behind it
          const run = blockMs !== undefined && blockMs > 0 ? () => blocking.use(read) : () => read(redis)
          return call("readGroup", run).pipe(
            Effect.map((reply) => {
              const streams = (reply ?? []) as Array<[string, StreamEntry[]]>
              return (streams[0]?.[1] ?? []).map((e) => toDelivery(partition, e, 1))
            })
          )
        }),

      ack: (partition, group, positions) =>
        Effect.suspend(() => {
          if (positions.length === 0) return Effect.void
          const key = keysOf(partition).log
          return call("ack", () => redis.xack(key, group, ...positions)).pipe(Effect.asVoid)
        }),

      reclaim: ({ partition, group, consumer, minIdleMs, count }) =>
        Effect.suspend(() => {
          const key = keysOf(partition).log
          return call("reclaim", () => redis.bfReclaim(key, group, consumer, minIdleMs, count)).pipe(
            Effect.map(([entries, trimmed, counts]) => ({
              deliveries: entries.map((e, i) => toDelivery(partition, e, Number(counts[i] ?? 1))),
              trimmedAcked: trimmed.map(String)
            }))
          )
        }),

      pendingCount: (partition, group) =>
        Effect.suspend(() => {
          const key = keysOf(partition).log
          return call("pendingCount", () => redis.xpending(key, group)).pipe(Effect.map((r) => Number((r as [number])[0] ?? 0)))
        }),

      groupProgress: (partition) =>
        Effect.suspend(() => {
          const key = keysOf(partition).log
          return call("groupProgress", async () => {
            let groups: ReadonlyArray<ReadonlyArray<unknown>>
            try {
              groups = (await redis.xinfo("GROUPS", key)) as ReadonlyArray<ReadonlyArray<unknown>>
            } catch (e) {
              // no partition log yet: no group either
              if (e instanceof Error && /no such key/i.test(e.message)) return []
              throw e
            }
            return Promise.all(
              groups.map(async (flat) => {
                const g = groupInfo(flat)
                const group = String(g["name"])
                const last = String(g["last-delivered-id"] ?? "0-0")
                const oldest = Number(g["pending"] ?? 0) > 0 ? ((await redis.xpending(key, group, "-", "+", 1)) as Array<[string]>)[0]?.[0] : undefined
                return { group, lastDelivered: last === "0-0" ? null : last, oldestPending: oldest ?? null }
              })
            )
          })
        }),

      deadLetter: ({ group, delivery, reason }) =>
        Effect.suspend(() => {
          const k = keysOf(delivery.partition)
          return call("deadLetter", () =>
            redis.bfDeadLetter(k.deadLetter, k.log, group, delivery.position, reason, delivery.deliveryCount, JSON.stringify(delivery.raw))
          ).pipe(Effect.asVoid)
        }),

      readDeadLetters: (partition) =>
        Effect.suspend(() => {
          const key = keysOf(partition).deadLetter
          return call("readDeadLetters", () => redis.xrange(key, "-", "+")).pipe(
            Effect.map((entries) => (entries as StreamEntry[]).map(([id, fields]) => toDeadLetter(partition, id, argsToFields(fields))))
          )
        }),

      trimPartition: (partition, below) =>
        Effect.suspend(() => call("trimPartition", () => redis.xtrim(keysOf(partition).log, "MINID", below))),

      trimStream: (botId, belowVersion) =>
        Effect.suspend(() => {
          if (!Number.isSafeInteger(belowVersion) || belowVersion <= 1) return Effect.succeed(0)
          return call("trimStream", () => redis.xtrim(keysOf(pOf(botId)).stream(botId), "MINID", `${belowVersion}-0`))
        }),

      acquireLease: (botId, nodeId, ttlMs) =>
        Effect.suspend(() =>
          call("acquireLease", () => redis.bfAcquireLease(keysOf(pOf(botId)).lease(botId), nodeId, Math.ceil(ttlMs))).pipe(
            Effect.map((r) => (r === null ? null : toLease(botId, nodeId, Number(r[0]), Number(r[1]))))
          )
        ),

      renewLease: (lease, ttlMs) =>
        Effect.suspend(() =>
          call("renewLease", () => redis.bfRenewLease(keysOf(pOf(lease.botId)).lease(lease.botId), lease.nodeId, lease.fence, Math.ceil(ttlMs))).pipe(
            Effect.map((expiresAt) => (expiresAt === null ? null : { ...lease, expiresAt: Number(expiresAt) }))
          )
        ),

      releaseLease: (lease) =>
        Effect.suspend(() =>
          call("releaseLease", () => redis.bfReleaseLease(keysOf(pOf(lease.botId)).lease(lease.botId), lease.fence)).pipe(
            Effect.map((r) => Number(r) === 1)
          )
        ),

      readLease: (botId) =>
        Effect.suspend(() =>
          call("readLease", () => redis.hmget(keysOf(pOf(botId)).lease(botId), "nodeId", "fence", "expiresAt")).pipe(
            Effect.map(([nodeId, fence, expiresAt]) =>
              !nodeId ? null : toLease(botId, nodeId, Number(fence ?? 0), Number(expiresAt ?? 0))
            )
          )
        ),

      close: Effect.promise(async () => {
        await blocking.close()
        if (owned) await redis.quit().catch(() => redis.disconnect())
      })
    }
    return service
  })

const toDeadLetter = (partition: number, id: string, f: Record<string, string>): DeadLetter => {
  let raw: RawFields = {}
  try {
    raw = JSON.parse(f["raw"] ?? "{}") as RawFields
  } catch {
    // written by this adapter as JSON; a hand-made entry keeps an empty raw rather than failing the read
  }
  return {
    partition,
    id,
    group: f["group"] ?? "",
    position: f["position"] ?? "",
    reason: f["reason"] ?? "",
    deliveryCount: Number(f["deliveryCount"] ?? 0),
    raw,
    // the entry id's first part is the server's time in ms when it was dead-lettered
    at: new Date(Number(id.split("-")[0])).toISOString()
  }
}

/** The Redis log as the `EventLog` service; its connections close with the layer's scope. */
export const RedisEventLogLive = (options: RedisEventLogOptions = {}) =>
  Layer.scoped(EventLog, Effect.acquireRelease(makeRedisEventLog(options), (log) => log.close))

