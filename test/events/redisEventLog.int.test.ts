import { Effect, Either } from "effect"
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { argsToFields } from "../../src/events/codec.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { EventLog } from "../../src/events/eventLog.js"
import { partitionTag, redisKeys } from "../../src/events/partition.js"
import { makeRedisEventLog, RedisEventLogLive } from "../../src/events/redisEventLog.js"
import { newEvent, updateReceived, userSeen } from "../support/events.js"
import { createTestPrefix } from "../support/redis.js"
import { eventLogContract } from "./eventLog.contract.js"

const run = <A, E>(eff: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(eff)
const attempt = <A, E>(eff: Effect.Effect<A, E>): Promise<Either.Either<A, E>> => Effect.runPromise(Effect.either(eff))

eventLogContract("redis", async () => {
  const { prefix, url, cleanup } = createTestPrefix("redislog-contract")
  const log = await run(makeRedisEventLog({ url, prefix }))
  const raw = new Redis(url)
  return {
    log,
    injectRaw: (partition, fields) => raw.xadd(redisKeys(prefix, partition).log, "*", ...Object.entries(fields).flat()),
    cleanup: async () => {
      await run(log.close)
      raw.disconnect()
      await cleanup()
    }
  }
})

describe("redis event log specifics", () => {
  const t = createTestPrefix("redislog")
  let log: EventLogService
  let redis: Redis
  beforeAll(async () => {
    log = await run(makeRedisEventLog({ url: t.url, prefix: t.prefix, partitions: 16 }))
    redis = new Redis(t.url)
  })
  afterAll(async () => {
    await run(log.close)
    redis.disconnect()
    await t.cleanup()
  })

  const keysUnder = async () => {
    const out: string[] = []
    let cursor = "0"
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${t.prefix}:*`, "COUNT", 1000)
      cursor = next
      out.push(...keys)
    } while (cursor !== "0")
    return out.sort()
  }

  const writeOne = async (botId: string, events = [newEvent(updateReceived(1))]) => {
    const lease = await run(log.acquireLease(botId, "node-a", 30_000))
    return run(log.append({ botId, expectedVersion: 0, fence: lease!.fence, events }))
  }

  it("keeps every key of a bot under its partition's hash tag, as DESIGN.md lays out", async () => {
    const bot = "layout-bot"
    await writeOne(bot)
    await run(log.ensureGroup(log.partitionOf(bot), "g-layout", "start"))
    const tag = `{${partitionTag(log.partitionOf(bot))}}`
    expect(await keysUnder()).toEqual(
      [`${t.prefix}:${tag}:bot:${bot}`, `${t.prefix}:${tag}:lease:${bot}`, `${t.prefix}:${tag}:log`].sort()
    )
  })

  it("takes a very large append (a whole legacy import) in one atomic call", async () => {
    const events = Array.from({ length: 20_000 }, (_, i) => newEvent(userSeen(i + 1)))
    const r = await writeOne("huge-append-bot", events)
    expect(r.version).toBe(20_000)
    expect(r.positions).toHaveLength(20_000)
    const tail = await run(log.readStream("huge-append-bot", { direction: "backward", limit: 1 }))
    expect(tail[0]?.data).toMatchObject({ _tag: "UserSeen", userId: 20_000 })
  })

  it("stores readable fields that redis-cli XRANGE shows, with versions as entry ids", async () => {
    const bot = "readable-bot"
    const r = await writeOne(bot, [newEvent(updateReceived(41)), newEvent(userSeen(7, "Grace"))])
    const k = redisKeys(t.prefix, log.partitionOf(bot))
    const stream = await redis.xrange(k.stream(bot), "-", "+")
    expect(stream.map(([id]) => id)).toEqual(["1-0", "2-0"])
    const second = argsToFields(stream[1]![1])
    expect(second).toMatchObject({ botId: bot, v: "2", type: "UserSeen", actor: "system", pos: r.positions[1] })
    expect(JSON.parse(second["data"]!)).toMatchObject({ userId: 7, firstName: "Grace" })
    const logEntry = await redis.xrange(k.log, r.positions[0]!, r.positions[0]!)
    expect(argsToFields(logEntry[0]![1])).toMatchObject({ botId: bot, v: "1", type: "UpdateReceived" })
    // versions are addressable straight from redis-cli: XRANGE key 2 2 is version 2
    expect((await redis.xrange(k.stream(bot), "2", "2")).map(([id]) => id)).toEqual(["2-0"])
  })

  it("keeps the version of a stream trimmed to nothing, and refuses to rewrite its history", async () => {
    const bot = "trimmed-bot"
    const lease = await run(log.acquireLease(bot, "node-a", 30_000))
    await run(log.append({ botId: bot, expectedVersion: 0, fence: lease!.fence, events: [newEvent(updateReceived(1)), newEvent(updateReceived(2))] }))
    expect(await run(log.trimStream(bot, 10))).toBe(2)
    expect(await run(log.readStream(bot))).toEqual([])
    expect(await run(log.streamVersion(bot))).toBe(2)
    const again = await attempt(log.append({ botId: bot, expectedVersion: 0, fence: lease!.fence, events: [newEvent(updateReceived(3))] }))
    expect(Either.isLeft(again) && again.left).toMatchObject({ _tag: "WrongExpectedVersion", actual: 2 })
    const next = await run(log.append({ botId: bot, expectedVersion: 2, fence: lease!.fence, events: [newEvent(updateReceived(3))] }))
    expect(next.version).toBe(3)
  })

  it("acks away pending entries deleted from the log, and they never come back", async () => {
    const bot = "deleted-bot"
    const p = log.partitionOf(bot)
    const r = await writeOne(bot, [newEvent(updateReceived(1)), newEvent(updateReceived(2)), newEvent(updateReceived(3))])
    await run(log.ensureGroup(p, "g-deleted", "start"))
    const taken = await run(log.readGroup({ partition: p, group: "g-deleted", consumer: "dies", count: 100 }))
    expect(taken.map((d) => d.position)).toEqual(expect.arrayContaining([...r.positions]))
    await redis.xdel(redisKeys(t.prefix, p).log, r.positions[1]!)
    const first = await run(log.reclaim({ partition: p, group: "g-deleted", consumer: "heir", minIdleMs: 0, count: 100 }))
    expect(first.trimmedAcked).toEqual([r.positions[1]])
    expect(first.deliveries.map((d) => d.position)).toEqual(taken.map((d) => d.position).filter((x) => x !== r.positions[1]))
    const second = await run(log.reclaim({ partition: p, group: "g-deleted", consumer: "heir2", minIdleMs: 0, count: 100 }))
    expect(second.trimmedAcked).toEqual([])
    expect(second.deliveries.every((d) => d.position !== r.positions[1])).toBe(true)
  })

  it("reloads its Lua scripts after SCRIPT FLUSH, for single and pipelined appends", async () => {
    const bot = "flush-bot"
    const lease = await run(log.acquireLease(bot, "node-a", 30_000))
    await run(log.append({ botId: bot, expectedVersion: 0, fence: lease!.fence, events: [newEvent(updateReceived(1))] }))
    await redis.script("FLUSH")
    const one = await run(log.append({ botId: bot, expectedVersion: 1, fence: lease!.fence, events: [newEvent(updateReceived(2))] }))
    expect(one.version).toBe(2)
    await redis.script("FLUSH")
    const many = await run(
      log.appendMany([
        { botId: bot, expectedVersion: 2, fence: lease!.fence, events: [newEvent(updateReceived(3))] },
        { botId: bot, expectedVersion: 3, fence: lease!.fence, events: [newEvent(updateReceived(4))] }
      ])
    )
    expect(many.map((r) => Either.isRight(r) && r.right.version)).toEqual([3, 4])
    expect(await run(log.streamVersion(bot))).toBe(4)
  })

  it("times leases by the Redis server's clock, and keeps the fence counter after release", async () => {
    const bot = "clock-bot"
    const [seconds, micros] = await redis.time()
    const serverNow = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
    const lease = await run(log.acquireLease(bot, "node-a", 60_000))
    expect(lease!.expiresAt - serverNow).toBeGreaterThanOrEqual(60_000)
    expect(lease!.expiresAt - serverNow).toBeLessThan(70_000)
    expect(await run(log.releaseLease(lease!))).toBe(true)
    expect(await redis.hgetall(redisKeys(t.prefix, log.partitionOf(bot)).lease(bot))).toMatchObject({ nodeId: "", fence: String(lease!.fence) })
    expect((await run(log.acquireLease(bot, "node-a", 1000)))!.fence).toBe(lease!.fence + 1)
  })

  it("a blocking group read waits for new entries without holding up appends", async () => {
    const bot = "blocking-bot"
    const p = log.partitionOf(bot)
    await run(log.ensureGroup(p, "g-block", "end"))
    const waiting = run(log.readGroup({ partition: p, group: "g-block", consumer: "c", count: 10, blockMs: 5_000 }))
    const written = await writeOne(bot)
    const got = await waiting
    expect(got.map((d) => d.position)).toEqual(written.positions)
  })

  it("provides the EventLog service through a layer", async () => {
    const version = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const l = yield* EventLog
          return yield* l.streamVersion("layer-bot")
        }).pipe(Effect.provide(RedisEventLogLive({ url: t.url, prefix: t.prefix })))
      )
    )
    expect(version).toBe(0)
  })
})

describe("redis event log when Redis is unreachable", () => {
  it("fails with LogUnavailable, and writes nothing", async () => {
    const log = await run(
      makeRedisEventLog({
        url: "redis://127.0.0.1:1",
        prefix: "bft-unreachable",
        redisOptions: { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false }
      })
    )
    try {
      const appended = await attempt(log.append({ botId: "b", expectedVersion: 0, fence: 1, events: [newEvent(updateReceived(1))] }))
      expect(Either.isLeft(appended) && appended.left).toMatchObject({ _tag: "LogUnavailable", operation: "append" })
      const read = await attempt(log.readStream("b"))
      expect(Either.isLeft(read) && read.left._tag).toBe("LogUnavailable")
      const many = await attempt(log.appendMany([{ botId: "b", expectedVersion: 0, fence: 1, events: [newEvent(updateReceived(1))] }]))
      expect(Either.isLeft(many) || (Either.isRight(many) && many.right.every((r) => Either.isLeft(r) && r.left._tag === "LogUnavailable"))).toBe(true)
      const bad = await attempt(log.append({ botId: "b", expectedVersion: 0, fence: 1, events: [] }))
      expect(Either.isLeft(bad) && bad.left._tag).toBe("InvalidEvent")
      const badId = await attempt(log.append({ botId: "b:{p01}", expectedVersion: 0, fence: 1, events: [newEvent(updateReceived(1))] }))
      expect(Either.isLeft(badId) && badId.left).toMatchObject({ _tag: "InvalidEvent", reason: "BadRequest" })
    } finally {
      await run(log.close)
    }
  })
})
