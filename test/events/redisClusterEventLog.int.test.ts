import { randomBytes } from "node:crypto"
import { Effect, Either } from "effect"
import type { Cluster } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { EventLogService } from "../../src/events/eventLog.js"
import { partitionSlot, redisKeys } from "../../src/events/partition.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import { infoAcrossMasters, isCluster, openRedis, publishCounted, scanKeys, unlinkKeys } from "../../src/health/redisHealth.js"
import type { RedisClient } from "../../src/health/redisHealth.js"
import { makeRedisInbox } from "../../src/actors/redisInbox.js"
import { newEvent, updateReceived } from "../support/events.js"
import { testRedisCluster } from "../support/privateRedisCluster.js"
import type { PrivateRedisCluster } from "../support/privateRedisCluster.js"
import { eventLogContract } from "./eventLog.contract.js"

/*
 * The event log, the inboxes and the control channel's counting on a real Redis Cluster (3 masters
 * + 3 replicas). A script or multi-key command naming keys of two slots is refused by the cluster
 * with CROSSSLOT, so the contract suite passing here is the proof that each touches one slot.
 */

const run = <A, E>(eff: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(eff)

let cluster: PrivateRedisCluster
let admin: RedisClient
beforeAll(async () => {
  cluster = await testRedisCluster()
  admin = openRedis(cluster.url, "test-admin")
}, 120_000)
afterAll(async () => {
  admin?.disconnect()
  await cluster?.close()
})

const prefixOf = (label: string) => `bft-${label}-${randomBytes(4).toString("hex")}`
const dropPrefix = (prefix: string) => scanKeys(admin, `${prefix}:*`, (keys) => unlinkKeys(admin, keys))

eventLogContract("redis cluster", async () => {
  const prefix = prefixOf("cluster-contract")
  const log = await run(makeRedisEventLog({ url: cluster.url, prefix }))
  const raw = openRedis(cluster.url, "test-raw")
  return {
    log,
    injectRaw: (partition, fields) => raw.xadd(redisKeys(prefix, partition).log, "*", ...Object.entries(fields).flat()),
    cleanup: async () => {
      await run(log.close)
      raw.disconnect()
      await dropPrefix(prefix)
    }
  }
})

describe("redis cluster specifics", () => {
  const prefix = prefixOf("cluster")
  let log: EventLogService
  beforeAll(async () => {
    log = await run(makeRedisEventLog({ url: cluster.url, prefix, partitions: 16 }))
  })
  afterAll(async () => {
    await run(log.close)
    await dropPrefix(prefix)
  })

  it("is a real cluster: a command naming two partitions' keys is refused with CROSSSLOT", async () => {
    expect(isCluster(admin)).toBe(true)
    const a = redisKeys(prefix, 0).log
    const b = redisKeys(prefix, 1).log
    expect(partitionSlot(0)).not.toBe(partitionSlot(1))
    await expect(admin.eval("return 1", 2, a, b)).rejects.toThrow(/CROSSSLOT/)
    await expect(admin.eval("return 1", 2, a, redisKeys(prefix, 0).stream("x"))).resolves.toBe(1)
  })

  it("spreads the partitions over the three masters", async () => {
    const masters = new Set<number>()
    for (let p = 0; p < 16; p++) masters.add(await cluster.masterOf(partitionSlot(p)))
    expect(masters.size).toBe(3)
  })

  it("appendMany over bots of every partition: each append lands once, in order, whatever master serves it", async () => {
    const bots = Array.from({ length: 64 }, (_, i) => `many-${i}`)
    const fences = new Map<string, number>()
    for (const b of bots) fences.set(b, (await run(log.acquireLease(b, "node-a", 30_000)))!.fence)
    for (let round = 0; round < 3; round++) {
      const results = await run(
        log.appendMany(bots.map((botId) => ({ botId, expectedVersion: round * 2, fence: fences.get(botId)!, events: [newEvent(updateReceived(round * 2 + 1)), newEvent(updateReceived(round * 2 + 2))] })))
      )
      expect(results.every(Either.isRight)).toBe(true)
    }
    // a stale version in the middle of a batch fails alone
    const mixed = await run(
      log.appendMany([
        { botId: bots[0]!, expectedVersion: 6, fence: fences.get(bots[0]!)!, events: [newEvent(updateReceived(7))] },
        { botId: bots[1]!, expectedVersion: 3, fence: fences.get(bots[1]!)!, events: [newEvent(updateReceived(7))] }
      ])
    )
    expect(Either.isRight(mixed[0]!)).toBe(true)
    expect(Either.isLeft(mixed[1]!) && mixed[1].left._tag).toBe("WrongExpectedVersion")
    for (const b of bots.slice(1)) expect((await run(log.readStream(b))).map((e) => e.version)).toEqual([1, 2, 3, 4, 5, 6])
    const partitions = new Set(bots.map((b) => log.partitionOf(b)))
    expect(partitions.size).toBe(16)
  })

  it("inbox waits on bots of every partition are woken by an enqueue (readers on each slot's master)", async () => {
    const inbox = makeRedisInbox({ url: cluster.url, prefix, partitions: 16 })
    try {
      const bots = Array.from({ length: 32 }, (_, i) => `waiter-${i}`)
      const waits = bots.map((b) => run(inbox.waitFor(b, null, 20_000)))
      await new Promise((r) => setTimeout(r, 300))
      for (const b of bots) await run(inbox.enqueue(b, { update_id: 1, message: { message_id: 1, date: 0, chat: { id: 1, type: "private" }, text: b } }))
      const woken = await Promise.all(waits)
      for (const w of woken) {
        // a wait ends with the entries, or empty when the caller should read (both well before 20 s)
        if (w) expect(w.length).toBeLessThanOrEqual(1)
      }
      for (const b of bots) expect((await run(inbox.readAfter(b, null, 10))).length).toBe(1)
    } finally {
      await run(inbox.close)
    }
  }, 60_000)

  it("counts a control-channel message's subscribers over every node, not only the one it was published on", async () => {
    const channel = `${prefix}:control`
    const subs = [openRedis(cluster.url, "test-sub", { maxRetriesPerRequest: null }), openRedis(cluster.url, "test-sub", { maxRetriesPerRequest: null }), openRedis(cluster.url, "test-sub", { maxRetriesPerRequest: null })]
    try {
      const heard: string[] = []
      for (const s of subs) {
        s.on("message", (_c: string, m: string) => heard.push(m))
        await s.subscribe(channel)
      }
      const pub = openRedis(cluster.url, "test-pub")
      try {
        expect(await publishCounted(pub, channel, "hello")).toBe(3)
      } finally {
        pub.disconnect()
      }
      await expect.poll(() => heard.length).toBe(3)
    } finally {
      for (const s of subs) s.disconnect()
    }
  })

  it("scans and deletes keys on every master, and sums memory over the masters", async () => {
    const scratch = prefixOf("scan")
    const keys = Array.from({ length: 16 }, (_, p) => redisKeys(scratch, p).log)
    for (const k of keys) await admin.xadd(k, "*", "f", "v")
    const found: string[] = []
    await scanKeys(admin, `${scratch}:*`, async (page) => void found.push(...page))
    expect(found.sort()).toEqual([...keys].sort())
    // one UNLINK of all of them would be CROSSSLOT: unlinkKeys goes slot by slot
    await expect(admin.unlink(...keys)).rejects.toThrow(/CROSSSLOT/)
    await unlinkKeys(admin, keys)
    const left: string[] = []
    await scanKeys(admin, `${scratch}:*`, async (page) => void left.push(...page))
    expect(left).toEqual([])
    const perMaster = await Promise.all((admin as Cluster).nodes("master").map(async (n) => Number(/used_memory:(\d+)/.exec(await n.info("memory"))?.[1])))
    const summed = Number(/used_memory:(\d+)/.exec(await infoAcrossMasters(admin, "memory"))?.[1])
    expect(perMaster).toHaveLength(3)
    // each master's figure moves a little between the two reads: the sum is within 10 % of the parts'
    const parts = perMaster.reduce((a, b) => a + b, 0)
    expect(Math.abs(summed - parts) / parts).toBeLessThan(0.1)
  })
})
