import { randomBytes } from "node:crypto"
import { Effect, Either } from "effect"
import { encodeNewEvent, fieldsToArgs, toFields } from "../src/events/codec.js"
import { partitionTag, redisKeys } from "../src/events/partition.js"
import { makeRedisEventLog } from "../src/events/redisEventLog.js"
import { openRedis, scanKeys, unlinkKeys } from "../src/health/redisHealth.js"
import { testRedisCluster } from "../test/support/privateRedisCluster.js"
import { APPENDS_PER_BATCH, EVENTS_PER_APPEND, IN_FLIGHT, appendRounds, chunk, inFlight, update } from "./logAppends.js"
import { rate, report } from "./report.js"

/*
 * log.redis.cluster.append: events/s through the Redis adapter's appendMany on a Redis Cluster
 * (3 masters + 3 replicas: TEST_REDIS_CLUSTER_NODES, else a private one started here), 1,000 bots,
 * ~300-byte UpdateReceived events, 4 per append, batches of 100 appends, 8 batches in flight, as
 * `log.redis.append` does on one Redis. Baseline on the same cluster: the same encoded fields
 * XADDed plainly, once per event, pipelined per partition (a cluster pipeline may only name keys of
 * one node; the adapter splits its batches the same way). BENCH_SHORT=1: fewer bots and rounds.
 */

const SHORT = process.env["BENCH_SHORT"] === "1"
const BOTS = SHORT ? 200 : 1_000
const ROUNDS = SHORT ? 2 : 6
const TRIALS = SHORT ? 2 : 3

export const run = async (): Promise<void> => {
  const cluster = await testRedisCluster()
  const prefix = `bench-cluster-${randomBytes(4).toString("hex")}`
  const redis = openRedis(cluster.url, "bench-baseline")
  const log = await Effect.runPromise(makeRedisEventLog({ url: cluster.url, prefix }))
  try {
    const bots = Array.from({ length: BOTS }, (_, i) => `bench-bot-${i}`)
    const fences = await Promise.all(bots.map(async (b) => (await Effect.runPromise(log.acquireLease(b, "bench-node", 600_000)))!.fence))
    const baselineArgs = bots.map((botId, i) =>
      Array.from({ length: EVENTS_PER_APPEND }, (_, k) => fieldsToArgs(toFields(botId, k + 1, Either.getOrThrow(encodeNewEvent(botId, update(k + 1), () => `e-${i}-${k}`)))))
    )
    // baseline keys carry the bot's partition tag, so a partition's keys share a node as the adapter's do
    const partitionOfBot = bots.map((b) => log.partitionOf(b))
    const baseKeys = bots.map((b, i) => `${prefix}:{${partitionTag(partitionOfBot[i]!)}}:baseline:${b}`)
    const baselineRound = async () => {
      await inFlight(chunk(bots.map((_, i) => i), APPENDS_PER_BATCH), async (batch) => {
        const byPartition = new Map<number, number[]>()
        for (const i of batch) byPartition.set(partitionOfBot[i]!, [...(byPartition.get(partitionOfBot[i]!) ?? []), i])
        await Promise.all(
          [...byPartition.values()].map(async (ids) => {
            const p = redis.pipeline()
            for (const i of ids) for (const args of baselineArgs[i]!) p.xadd(baseKeys[i]!, "*", ...args)
            await p.exec()
          })
        )
      })
    }

    await appendRounds(log, bots, fences, 0, 1)
    await baselineRound()

    const total = BOTS * ROUNDS * EVENTS_PER_APPEND
    let baseline = 0
    let value = 0
    let round = 1
    for (let trial = 0; trial < TRIALS; trial++) {
      baseline = Math.max(baseline, await rate(total, async () => {
        for (let r = 0; r < ROUNDS; r++) await baselineRound()
      }))
      value = Math.max(value, await rate(total, async () => void (await appendRounds(log, bots, fences, round, ROUNDS))))
      round += ROUNDS
    }
    const versions = await Promise.all(bots.slice(0, 10).map((b) => Effect.runPromise(log.streamVersion(b))))
    if (versions.some((v) => v !== round * EVENTS_PER_APPEND)) throw new Error(`unexpected stream versions ${versions.join(",")}`)
    const logLength = (await Promise.all(Array.from({ length: log.partitions }, (_, p) => redis.xlen(redisKeys(prefix, p).log)))).reduce((a, b) => a + b, 0)
    if (logLength !== round * BOTS * EVENTS_PER_APPEND) throw new Error(`partition logs hold ${logLength} entries`)

    report({
      bench: "log.redis.cluster.append",
      unit: "events/s",
      value,
      baseline: "redis.cluster.xadd.pipelined",
      baselineValue: baseline,
      masters: 3,
      replicas: 3,
      bots: BOTS,
      eventsPerTrial: total,
      trials: TRIALS,
      eventsPerAppend: EVENTS_PER_APPEND,
      appendsPerBatch: APPENDS_PER_BATCH,
      batchesInFlight: IN_FLIGHT
    })
  } finally {
    await Effect.runPromise(log.close)
    await scanKeys(redis, `${prefix}:*`, (keys) => unlinkKeys(redis, keys)).catch(() => undefined)
    redis.disconnect()
    await cluster.close()
  }
}
