import { Effect, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ActorHost } from "../../src/actors/host.js"
import type { InboxService } from "../../src/actors/inbox.js"
import { makeRedisInbox } from "../../src/actors/redisInbox.js"
import { makeSupervisor } from "../../src/actors/supervisor.js"
import type { Supervisor } from "../../src/actors/supervisor.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import { createTestPrefix } from "../support/redis.js"
import { openScope, run, testPool, text, until } from "./support.js"

const BOTS = 1000
const PARTITIONS = 16

describe("a fleet of 1,000 bots on 2 threads (real worker threads, real Redis)", () => {
  const { prefix, url, cleanup } = createTestPrefix("fleet")
  let log: EventLogService
  let inbox: InboxService
  let host: ActorHost
  let sup: Supervisor
  const scope = openScope()
  const bots = Array.from({ length: BOTS }, (_, i) => `fleet${i}`)
  const versions = () => run(Effect.forEach(bots, (b) => log.streamVersion(b), { concurrency: 100 }))

  beforeAll(async () => {
    log = await run(makeRedisEventLog({ url, prefix, partitions: PARTITIONS }))
    inbox = makeRedisInbox({ url, prefix, partitions: PARTITIONS })
    host = testPool(url, prefix, PARTITIONS, { threads: 2, botsPerThread: BOTS / 2 })
    sup = await run(Scope.extend(makeSupervisor({ nodeId: "fleet-node", host, log, inbox, actor: { idleWaitMs: 2000 } }), scope.scope))
  })
  afterAll(async () => {
    await scope.close()
    await host.close()
    await run(inbox.close)
    await run(log.close)
    await cleanup()
  })

  it("start, handle inputs, drain and stop cleanly", async () => {
    await run(Effect.forEach(bots, (b) => sup.startBot(b), { discard: true }))
    // started: each stream holds its BotStarted
    await until(async () => (await versions()).every((v) => v === 1), 90_000, 500)
    await run(Effect.forEach(bots, (b, i) => inbox.enqueue(b, text(i + 1, `hello ${i}`)), { concurrency: 100, discard: true }))
    // handled: UpdateReceived + MessageReceived + ReplySent
    await until(async () => (await versions()).every((v) => v === 4), 60_000, 500)
    const statuses = await run(sup.statuses)
    expect(statuses.filter((s) => s.state === "running")).toHaveLength(BOTS)
    expect(statuses.every((s) => s.restarts === 0 && s.inboxLag === 0)).toBe(true)

    await run(sup.drain)
    expect(await versions()).toEqual(bots.map(() => 5))
    const last = await run(Effect.forEach(bots, (b) => log.readStream(b, { direction: "backward", limit: 1 }), { concurrency: 100 }))
    expect(last.every(([e]) => e?.type === "BotStopped")).toBe(true)
    const leases = await run(Effect.forEach(bots, (b) => log.readLease(b), { concurrency: 100 }))
    expect(leases.filter((l) => l !== null)).toHaveLength(0)
    expect((await run(sup.statuses)).every((s) => s.state === "stopped")).toBe(true)
  }, 180_000)
})
