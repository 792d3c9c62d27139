import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { hashSlot, partitionSlot, partitionTag, redisKeys } from "../../src/events/partition.js"
import { clusterUrlOf, describeRedisUrl, isClusterUrl, parseClusterNodes, parseClusterUrl } from "../../src/health/redisUrl.pure.js"

describe("Redis Cluster URLs", () => {
  it("reads seed nodes, credentials and TLS from a redis+cluster URL", () => {
    expect(parseClusterUrl("redis+cluster://127.0.0.1:7000,127.0.0.1:7001")).toEqual({
      nodes: [{ host: "127.0.0.1", port: 7000 }, { host: "127.0.0.1", port: 7001 }],
      username: undefined,
      password: undefined,
      tls: false
    })
    expect(parseClusterUrl("rediss+cluster://app:p%40ss@redis-a:6379,[::1]:6380/")).toEqual({
      nodes: [{ host: "redis-a", port: 6379 }, { host: "::1", port: 6380 }],
      username: "app",
      password: "p@ss",
      tls: true
    })
  })

  it("refuses what is not a cluster URL: no port, a database number, a bad port, nothing", () => {
    for (const bad of ["redis+cluster://host", "redis+cluster://h:1/0", "redis+cluster://h:70000", "redis+cluster://", "redis://h:1"]) {
      expect(parseClusterUrl(bad), bad).toBeUndefined()
    }
    expect(isClusterUrl("redis://h:1")).toBe(false)
    expect(isClusterUrl("rediss+cluster://h:1")).toBe(true)
    expect(parseClusterNodes(" a:1 , b:2 ")).toEqual([{ host: "a", port: 1 }, { host: "b", port: 2 }])
    expect(parseClusterNodes("a")).toBeUndefined()
  })

  it("round-trips nodes and credentials through clusterUrlOf, and describes it without the password", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ host: fc.constantFrom("a", "redis-1.internal", "::1", "10.0.0.7"), port: fc.integer({ min: 1, max: 65535 }) }), { minLength: 1, maxLength: 6 }),
        fc.string({ minLength: 1, maxLength: 12 }),
        fc.boolean(),
        (nodes, secret, tls) => {
          const url = clusterUrlOf(nodes, { username: "", password: encodeURIComponent(secret), tls })
          const back = parseClusterUrl(url)
          expect(back?.nodes).toEqual(nodes)
          expect(back?.password).toBe(secret)
          expect(back?.tls).toBe(tls)
          expect(describeRedisUrl(url)).not.toContain(encodeURIComponent(secret) + "@")
        }
      )
    )
  })
})

describe("hash slots", () => {
  it("computes Redis' CRC16 slots (reference values from the Redis Cluster specification)", () => {
    expect(hashSlot("123456789")).toBe(0x31c3)
    expect(hashSlot("foo")).toBe(12182)
    expect(hashSlot("{user1000}.following")).toBe(hashSlot("user1000"))
    // the specification's examples: the first {...} counts, from the first "{" to the next "}"
    expect(hashSlot("foo{{bar}}zap")).toBe(hashSlot("{bar"))
    expect(hashSlot("foo{bar}{zap}")).toBe(hashSlot("bar"))
  })

  it("puts every key of a partition in the partition's slot, whatever the prefix and bot", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1023 }), fc.stringMatching(/^[A-Za-z0-9_:-]{1,32}$/), fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/), (p, prefix, bot) => {
        const k = redisKeys(prefix, p)
        const slot = partitionSlot(p)
        for (const key of [k.stream(bot), k.log, k.inbox(bot), `${k.inbox(bot)}:dead`, k.lease(bot), k.snapshot(bot), k.deadLetter]) expect(hashSlot(key)).toBe(slot)
        expect(partitionTag(p)).toMatch(/^p\d{2,4}$/)
      })
    )
  })
})
