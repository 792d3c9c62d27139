import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { BotActor } from "../../src/actors/actor.js"
import type { ActorDeps } from "../../src/actors/actor.js"
import { echoHandler } from "../../src/actors/decider/updateHandler.js"
import { makeRedisInbox } from "../../src/actors/redisInbox.js"
import { makeMemorySnapshotStore } from "../../src/actors/snapshotStore.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import { createTestPrefix } from "../support/redis.js"
import { receivedIds, run, text, until } from "./support.js"

/** Two runtimes (their own connections) racing for one bot over real Redis. */
describe("lease fencing across runtimes (real Redis)", () => {
  const { prefix, url, cleanup } = createTestPrefix("leases")
  const runtimes: ActorDeps[] = []
  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      const o = { url, prefix, partitions: 4 }
      runtimes.push({ log: await run(makeRedisEventLog(o)), inbox: makeRedisInbox(o), snapshots: makeMemorySnapshotStore(), handlerFor: () => echoHandler })
    }
  })
  afterAll(async () => {
    for (const r of runtimes) {
      await run(r.inbox.close)
      await run(r.snapshots.close)
      await run(r.log.close)
    }
    await cleanup()
  })

  it("only the lease holder's appends land: the paused node's actor is refused and stops", async () => {
    const [a, b] = runtimes as [ActorDeps, ActorDeps]
    const leaseA = (await run(a.log.acquireLease("raced", "a", 300)))!
    const actorA = new BotActor(a, { botId: "raced", nodeId: "a", fence: leaseA.fence, idleWaitMs: 100 })
    const doneA = actorA.run()
    doneA.catch(() => undefined) // asserted below
    await until(() => actorA.status().status === "running")
    // a never renews (paused): once its TTL passes, b takes the lease with a higher fence
    await new Promise((r) => setTimeout(r, 400))
    const leaseB = (await run(b.log.acquireLease("raced", "b", 60_000)))!
    expect(leaseB.fence).toBeGreaterThan(leaseA.fence)
    const actorB = new BotActor(b, { botId: "raced", nodeId: "b", fence: leaseB.fence, idleWaitMs: 100 })
    const doneB = actorB.run()
    for (let i = 1; i <= 10; i++) await run(a.inbox.enqueue("raced", text(i, `m${i}`)))
    await expect(doneA).rejects.toMatchObject({ _tag: "LeaseLost" })
    await until(async () => (await receivedIds(b.log, "raced")).length === 10)
    expect(await receivedIds(b.log, "raced")).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    const events = await run(b.log.readStream("raced"))
    // after b's start, every event came from b's actor
    const startB = events.findIndex((e) => e.data._tag === "BotStarted" && e.data.nodeId === "b")
    expect(startB).toBe(1)
    expect(actorB.status().updatesHandled).toBe(10)
    await actorB.send({ _tag: "Stop", reason: "test" })
    await doneB
  })
})
