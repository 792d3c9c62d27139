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

/*
 * Everything on real worker threads, in ONE file sharing ONE pool, so these suites run one after
 * the other instead of starting three pools at once on a small machine.
 */
const PARTITIONS = 16
const BOTS = 1000

describe("actors on the piscina pool (real worker threads, real Redis)", () => {
  const { prefix, url, cleanup } = createTestPrefix("pool")
  let log: EventLogService
  let inbox: InboxService
  let host: ActorHost
  beforeAll(async () => {
    log = await run(makeRedisEventLog({ url, prefix, partitions: PARTITIONS }))
    inbox = makeRedisInbox({ url, prefix, partitions: PARTITIONS })
    // a heap limit low enough that the OOM bot kills its thread quickly, room for 500 bots a thread
    host = testPool(url, prefix, PARTITIONS, { threads: 2, botsPerThread: BOTS / 2, resourceLimits: { maxOldGenerationSizeMb: 192 } })
  })
  afterAll(async () => {
    await host.close()
    await run(inbox.close)
    await run(log.close)
    await cleanup()
  })

  describe("pool host", () => {
    it("runs a bot on a worker: handles its inbox, takes commands over its port, drains on stop", async () => {
      const lease = (await run(log.acquireLease("p1", "n1", 60_000)))!
      const h = host.start({ botId: "p1", nodeId: "n1", fence: lease.fence, idleWaitMs: 200 })
      await h.started
      await run(inbox.enqueue("p1", text(1, "hello")))
      await until(async () => (await h.send({ _tag: "Status" })).updatesHandled === 1)
      expect((await h.send({ _tag: "ChangeConfig", patch: { tone: "dry" } })).config).toEqual({ tone: "dry" })
      await h.send({ _tag: "Stop", reason: "test" })
      const final = await h.done
      expect(final.status).toBe("stopped")
      const types = (await run(log.readStream("p1"))).map((e) => e.type)
      expect(types).toEqual(["BotStarted", "UpdateReceived", "MessageReceived", "ReplySent", "BotConfigChanged", "BotStopped"])
    })

    it("a thread that exits rejects every actor on it as a thread death", async () => {
      const token = randomBytes(6).toString("hex")
      const lease = (await run(log.acquireLease("p2", "n1", 60_000)))!
      const h = host.start({ botId: "p2", nodeId: "n1", fence: lease.fence, idleWaitMs: 200 })
      await h.started
      await run(inbox.enqueue("p2", text(1, `crash:exit:${token}`)))
      await expect(h.done).rejects.toMatchObject({ _tag: "ActorDied", where: "thread" })
      // restarted, it handles the same input once (the crash was transient)
      const again = host.start({ botId: "p2", nodeId: "n1", fence: lease.fence, idleWaitMs: 200 })
      await until(async () => (await again.send({ _tag: "Status" })).updatesHandled === 1)
      await again.send({ _tag: "Stop", reason: "test" })
      await again.done
    })
  })

  describe("supervisor", () => {
    let sup: Supervisor
    const scope = openScope()
    beforeAll(async () => {
      sup = await run(
        Scope.extend(
          makeSupervisor({ nodeId: "n1", host, log, inbox, baseBackoffMs: 20, maxBackoffMs: 500, restartBudget: 4, actor: { idleWaitMs: 300 } }),
          scope.scope
        )
      )
    })
    afterAll(() => scope.close())

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

  describe("a fleet of 1,000 bots on 2 threads", () => {
    let sup: Supervisor
    const scope = openScope()
    const bots = Array.from({ length: BOTS }, (_, i) => `fleet${i}`)
    const versions = () => run(Effect.forEach(bots, (b) => log.streamVersion(b), { concurrency: 100 }))
    beforeAll(async () => {
      sup = await run(Scope.extend(makeSupervisor({ nodeId: "fleet-node", host, log, inbox, actor: { idleWaitMs: 2000 } }), scope.scope))
    })
    afterAll(() => scope.close())

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
})
