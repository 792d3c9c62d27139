import { randomBytes } from "node:crypto"
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
import { openScope, receivedIds, run, testPool, text, types, until } from "./support.js"

const PARTITIONS = 4

describe("supervisor over the pool (real worker threads, real Redis)", () => {
  const { prefix, url, cleanup } = createTestPrefix("supervisor")
  let log: EventLogService
  let inbox: InboxService
  let host: ActorHost
  let sup: Supervisor
  const scope = openScope()
  beforeAll(async () => {
    log = await run(makeRedisEventLog({ url, prefix, partitions: PARTITIONS }))
    inbox = makeRedisInbox({ url, prefix, partitions: PARTITIONS })
    // a heap limit low enough that the OOM bot kills its thread quickly
    host = testPool(url, prefix, PARTITIONS, { resourceLimits: { maxOldGenerationSizeMb: 192 } })
    sup = await run(
      Scope.extend(
        makeSupervisor({ nodeId: "n1", host, log, inbox, baseBackoffMs: 20, maxBackoffMs: 500, restartBudget: 4, actor: { idleWaitMs: 300 } }),
        scope.scope
      )
    )
  })
  afterAll(async () => {
    await scope.close()
    await host.close()
    await run(inbox.close)
    await run(log.close)
    await cleanup()
  })

  it("loses and doubles no input when threads crash (exit, uncaught throw, out of memory) mid-stream; other bots keep answering", async () => {
    const token = randomBytes(6).toString("hex")
    const bots = Array.from({ length: 8 }, (_, i) => `crash${i}`)
    for (const b of bots) await run(sup.startBot(b))
    const N = 15
    const crashAt: Record<string, [number, string]> = { crash0: [4, "exit"], crash1: [8, "throw"], crash2: [12, "oom"] }
    for (let i = 1; i <= N; i++) {
      for (const b of bots) {
        const c = crashAt[b]
        const body = c && c[0] === i ? `crash:${c[1]}:${token}-${b}` : `m${i}`
        await run(inbox.enqueue(b, text(i, body)))
      }
    }
    // a redelivery of an update already sent: dropped by id, not handled twice
    await run(inbox.enqueue("crash5", text(3, "m3")))
    const expected = Array.from({ length: N }, (_, i) => i + 1)
    await until(async () => {
      const counts = await Promise.all(bots.map(async (b) => (await receivedIds(log, b)).length))
      return counts.every((c) => c >= N)
    }, 100_000)
    for (const b of bots) expect(await receivedIds(log, b)).toEqual(expected)
    for (const b of ["crash0", "crash1", "crash2"]) {
      expect(await types(log, b)).toContain("BotCrashed")
      const s = await run(sup.status(b))
      expect(s?.state).toBe("running")
      expect(s?.restarts).toBeGreaterThanOrEqual(1)
    }
    const crashes = (await run(log.readStream("crash2"))).filter((e) => e.data._tag === "BotCrashed").map((e) => (e.data as { reason: string }).reason)
    expect(crashes.join(" ")).toMatch(/memory/i)
    expect((await types(log, "crash5")).filter((t) => t === "UpdateDuplicateDropped")).toHaveLength(1)
  }, 120_000)

  it("dead-letters the one input a bot's handler throws on, with the reason, and the bot goes on", async () => {
    await run(sup.startBot("poison"))
    await run(inbox.enqueue("poison", text(1, "hello")))
    await run(inbox.enqueue("poison", text(2, "boom")))
    await run(inbox.enqueue("poison", text(3, "after")))
    await until(async () => (await receivedIds(log, "poison")).length === 2)
    expect(await receivedIds(log, "poison")).toEqual([1, 3])
    const dead = await run(inbox.readDeadLetters("poison"))
    expect(dead.map((d) => [d.reason, (d.update as { update_id: number }).update_id])).toEqual([["RangeError: boom is not a greeting", 2]])
    expect((await run(log.readStream("poison"))).find((e) => e.type === "UpdateFailed")?.data).toMatchObject({ updateId: 2 })
    expect((await run(sup.status("poison")))?.restarts).toBe(0)
  })

  it("applies a config change to the running actor without a restart, and reports status with inbox lag", async () => {
    await run(sup.startBot("cfg"))
    await until(async () => (await run(sup.status("cfg")))?.state === "running")
    const s = await run(sup.send("cfg", { _tag: "ChangeConfig", patch: { greeting: "hey" } }))
    expect(s.config).toEqual({ greeting: "hey" })
    const refused = await run(Effect.either(sup.send("cfg", { _tag: "ChangeConfig", patch: "not an object" })))
    expect(refused._tag).toBe("Left")
    const status = await run(sup.status("cfg"))
    expect(status).toMatchObject({ state: "running", restarts: 0, inboxLag: 0 })
    expect(status?.version).toBeGreaterThanOrEqual(2)
  })

  it("stopBot drains: BotStopped recorded, snapshot written, lease released", async () => {
    await run(sup.startBot("stopme"))
    await run(inbox.enqueue("stopme", text(1, "hi")))
    await until(async () => (await receivedIds(log, "stopme")).length === 1)
    await run(sup.stopBot("stopme"))
    expect((await types(log, "stopme")).at(-1)).toBe("BotStopped")
    expect(await run(log.readLease("stopme"))).toBeNull()
    expect((await run(sup.status("stopme")))?.state).toBe("stopped")
  })
})
