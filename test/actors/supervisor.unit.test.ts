import { Effect, Scope } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import type { ActorDeps } from "../../src/actors/actor.js"
import { echoHandler } from "../../src/actors/decider/updateHandler.js"
import type { UpdateHandler } from "../../src/actors/decider/updateHandler.js"
import { makeInProcessHost } from "../../src/actors/inProcessHost.js"
import { InboxUnavailable } from "../../src/actors/inbox.js"
import type { InboxService } from "../../src/actors/inbox.js"
import { makeMemoryInbox } from "../../src/actors/memoryInbox.js"
import { makeMemorySnapshotStore } from "../../src/actors/snapshotStore.js"
import type { ActorHost } from "../../src/actors/host.js"
import { makeSupervisor } from "../../src/actors/supervisor.js"
import type { SupervisorOptions } from "../../src/actors/supervisor.js"
import { LogUnavailable } from "../../src/events/errors.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { openScope, receivedIds, run, text, types, until } from "./support.js"

const scopes: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const close of scopes.splice(0)) await close()
})

const supervise = async (deps: ActorDeps, o: Partial<SupervisorOptions> & { nodeId: string }) => {
  const s = openScope()
  scopes.push(s.close)
  const host = makeInProcessHost(deps)
  return run(Scope.extend(makeSupervisor({ host, log: deps.log, inbox: deps.inbox, baseBackoffMs: 5, maxBackoffMs: 50, ...o }), s.scope))
}
const memoryDeps = (handler: UpdateHandler = echoHandler, log: EventLogService = makeMemoryEventLog({ partitions: 4 }), inbox: InboxService = makeMemoryInbox()): ActorDeps => ({
  log,
  inbox,
  snapshots: makeMemorySnapshotStore(),
  handlerFor: () => handler
})

describe("supervisor (in-process host, memory log)", () => {
  it("gives up into BotGaveUp after its restart budget, with the last error, and releases the lease", async () => {
    const base = makeMemoryInbox()
    // every run of this bot dies reading its inbox
    const inbox: InboxService = { ...base, readAfter: () => Effect.die(new Error("disk on fire")) }
    const deps = memoryDeps(echoHandler, undefined, inbox)
    const sup = await supervise(deps, { nodeId: "n1", restartBudget: 3 })
    await run(sup.startBot("doomed"))
    await until(async () => (await run(sup.status("doomed")))?.state === "failed", 10_000)
    const s = await run(sup.status("doomed"))
    expect(s?.restarts).toBe(4)
    expect(s?.lastError).toMatch(/disk on fire/)
    const events = await run(deps.log.readStream("doomed"))
    expect(events.filter((e) => e.type === "BotCrashed")).toHaveLength(4)
    expect(events.at(-1)?.data).toMatchObject({ _tag: "BotGaveUp", attempts: 4 })
    expect(await run(deps.log.readLease("doomed"))).toBeNull()
  }, 30_000)

  it("rides out a store outage longer than its restart budget, and answers once the store is back", async () => {
    const base = makeMemoryInbox()
    let outage = 6
    // the inbox is unreachable for the bot's first six runs: more crashes than the budget allows
    const inbox: InboxService = {
      ...base,
      readAfter: (botId, after, count) =>
        outage > 0 ? Effect.suspend(() => (outage--, Effect.fail(new InboxUnavailable({ operation: "readAfter", cause: "failover" })))) : base.readAfter(botId, after, count)
    }
    const deps = memoryDeps(echoHandler, undefined, inbox)
    const sup = await supervise(deps, { nodeId: "n1", restartBudget: 2 })
    await run(sup.startBot("patient"))
    await run(base.enqueue("patient", text(1, "still there?")))
    await until(async () => (await receivedIds(deps.log, "patient")).length === 1, 20_000)
    expect((await run(sup.status("patient")))?.state).toBe("running")
    expect(await types(deps.log, "patient")).not.toContain("BotGaveUp")
  }, 30_000)

  it("keeps its lease through an outage longer than the lease TTL (renewing while it backs off), so no other node takes the bot", async () => {
    const log = makeMemoryEventLog({ partitions: 4 })
    const base = makeMemoryInbox()
    const outageEnds = Date.now() + 2000
    // the inbox is down for 2 s, more than three lease TTLs: every run crashes at once
    const inbox: InboxService = {
      ...base,
      readAfter: (botId, after, count) =>
        Date.now() < outageEnds ? Effect.fail(new InboxUnavailable({ operation: "readAfter", cause: "failover" })) : base.readAfter(botId, after, count)
    }
    let failRenewals = 2
    // the lease store misses the first renewals too: a failed renewal is tried again at the next tick
    const flakyLog: EventLogService = {
      ...log,
      renewLease: (lease, ttlMs) =>
        failRenewals > 0 ? Effect.suspend(() => (failRenewals--, Effect.fail(new LogUnavailable({ operation: "renewLease", cause: "failover" })))) : log.renewLease(lease, ttlMs)
    }
    const lease = { leaseTtlMs: 600, leaseRenewMs: 100, actor: { idleWaitMs: 50 } }
    const a = await supervise(memoryDeps(echoHandler, flakyLog, inbox), { nodeId: "a", ...lease })
    await run(a.startBot("steady"))
    await until(async () => (await run(a.status("steady")))?.restarts !== 0)
    const b = await supervise(memoryDeps(echoHandler, log, base), { nodeId: "b", ...lease })
    await run(b.startBot("steady"))
    await run(base.enqueue("steady", text(1, "still mine?")))
    await until(async () => (await receivedIds(log, "steady")).length === 1, 10_000)
    expect((await run(log.readLease("steady")))?.nodeId).toBe("a")
    expect(failRenewals).toBe(0)
    expect((await run(b.status("steady")))?.state).toBe("waiting")
    const starters = (await run(log.readStream("steady"))).flatMap((e) => (e.data._tag === "BotStarted" ? [e.data.nodeId] : []))
    expect(new Set(starters)).toEqual(new Set(["a"]))
  }, 30_000)

  it("stops, without restarting its actor on a stale fence, when another node took the lease during an outage backoff", async () => {
    const clock = { skew: 0 }
    const log = makeMemoryEventLog({ partitions: 4, now: () => Date.now() + clock.skew })
    const base = makeMemoryInbox()
    // node a's inbox connection is down for good; node b's works
    const down: InboxService = { ...base, readAfter: () => Effect.fail(new InboxUnavailable({ operation: "readAfter", cause: "partition" })) }
    const depsA = memoryDeps(echoHandler, log, down)
    const hostA = makeInProcessHost(depsA)
    const staleStarts: number[] = []
    const countingHost: ActorHost = {
      ...hostA,
      start: (spec) => {
        const holder = Effect.runSync(log.readLease(spec.botId))
        if (holder?.nodeId !== "a" || holder.fence !== spec.fence) staleStarts.push(spec.fence)
        return hostA.start(spec)
      }
    }
    const s = openScope()
    scopes.push(s.close)
    const lease = { leaseTtlMs: 60_000, leaseRenewMs: 50 }
    const a = await run(
      Scope.extend(makeSupervisor({ host: countingHost, log, inbox: down, nodeId: "a", baseBackoffMs: 100, maxBackoffMs: 100, ...lease }), s.scope)
    )
    await run(a.startBot("moved"))
    await until(async () => (await run(a.status("moved")))?.restarts !== 0)
    // a's lease expires as if a had been paused for two minutes; b takes the bot
    clock.skew = 120_000
    const b = await supervise(memoryDeps(echoHandler, log, base), { nodeId: "b", ...lease, actor: { idleWaitMs: 50 } })
    await run(b.startBot("moved"))
    await until(async () => (await run(b.status("moved")))?.state === "running")
    await until(async () => (await run(a.status("moved")))?.state === "stopped", 10_000)
    expect((await run(a.status("moved")))?.lastError).toMatch(/lease/i)
    await run(base.enqueue("moved", text(1, "who answers?")))
    await until(async () => (await receivedIds(log, "moved")).length === 1)
    expect(staleStarts).toEqual([])
    expect((await run(log.readLease("moved")))?.nodeId).toBe("b")
  }, 30_000)

  it("restarts a stuck actor (one input in the handler past the limit) and the input is handled once", async () => {
    let hung = false
    const handler: UpdateHandler = {
      handle: (ctx) => {
        if (ctx.update.message?.text === "hang" && !hung) {
          hung = true
          return new Promise(() => undefined)
        }
        return echoHandler.handle(ctx)
      }
    }
    const deps = memoryDeps(handler)
    const sup = await supervise(deps, { nodeId: "n1", stuckAfterMs: 300, actor: { idleWaitMs: 50 } })
    await run(sup.startBot("sticky"))
    await run(deps.inbox.enqueue("sticky", text(1, "hang")))
    await run(deps.inbox.enqueue("sticky", text(2, "after")))
    await until(async () => (await receivedIds(deps.log, "sticky")).length === 2, 10_000)
    expect(await receivedIds(deps.log, "sticky")).toEqual([1, 2])
    const crash = (await run(deps.log.readStream("sticky"))).find((e) => e.type === "BotCrashed")
    expect((crash?.data as { reason: string }).reason).toMatch(/stuck: one input in the handler/)
  }, 30_000)

  it("lets only one of two nodes run a bot; the other takes over when the first drains", async () => {
    const log = makeMemoryEventLog({ partitions: 4 })
    const inbox = makeMemoryInbox()
    const deps = memoryDeps(echoHandler, log, inbox)
    const a = await supervise(deps, { nodeId: "a", leaseTtlMs: 300, actor: { idleWaitMs: 50 } })
    const b = await supervise(deps, { nodeId: "b", leaseTtlMs: 300, actor: { idleWaitMs: 50 } })
    await run(a.startBot("shared"))
    await until(async () => (await run(a.status("shared")))?.state === "running")
    await run(b.startBot("shared"))
    await until(async () => (await run(b.status("shared")))?.state === "waiting")
    await run(inbox.enqueue("shared", text(1, "one")))
    await until(async () => (await receivedIds(log, "shared")).length === 1)
    await run(a.stopBot("shared"))
    await until(async () => (await run(b.status("shared")))?.state === "running", 5000)
    await run(inbox.enqueue("shared", text(2, "two")))
    await until(async () => (await receivedIds(log, "shared")).length === 2)
    expect(await receivedIds(log, "shared")).toEqual([1, 2])
    const lifecycle = (await run(log.readStream("shared"))).filter((e) => e.type === "BotStarted" || e.type === "BotStopped").map((e) => `${e.type}:${(e.data as { nodeId: string }).nodeId}`)
    expect(lifecycle).toEqual(["BotStarted:a", "BotStopped:a", "BotStarted:b"])
  }, 30_000)

  it("a node that lost its lease (paused past the TTL) stops and cannot write; the new holder handles everything once", async () => {
    const clock = { skew: 0 }
    const log = makeMemoryEventLog({ partitions: 4, now: () => Date.now() + clock.skew })
    const inbox = makeMemoryInbox()
    const deps = memoryDeps(echoHandler, log, inbox)
    const a = await supervise(deps, { nodeId: "a", leaseTtlMs: 60_000, actor: { idleWaitMs: 50 } })
    await run(a.startBot("contested"))
    await until(async () => (await run(a.status("contested")))?.state === "running")
    // a's lease expires as if a had been paused for two minutes; b takes it over
    clock.skew = 120_000
    const b = await supervise(deps, { nodeId: "b", leaseTtlMs: 60_000, actor: { idleWaitMs: 50 } })
    await run(b.startBot("contested"))
    await until(async () => (await run(b.status("contested")))?.state === "running")
    for (let i = 1; i <= 5; i++) await run(inbox.enqueue("contested", text(i, `m${i}`)))
    await until(async () => (await receivedIds(log, "contested")).length === 5)
    await until(async () => (await run(a.status("contested")))?.state === "stopped")
    expect(await receivedIds(log, "contested")).toEqual([1, 2, 3, 4, 5])
    const fenceOfB = (await run(log.readLease("contested")))!.fence
    const afterB = (await run(log.readStream("contested"))).filter((e) => e.correlationId.startsWith("inbox:"))
    expect(afterB.length).toBeGreaterThan(0)
    expect((await run(a.status("contested")))?.lastError).toMatch(/lease/i)
    expect(fenceOfB).toBeGreaterThan(1)
    expect(await types(log, "contested")).not.toContain("BotCrashed")
  }, 30_000)

  it("ends the actor of a node that lost its lease, so that node can still shut down", async () => {
    const clock = { skew: 0 }
    const log = makeMemoryEventLog({ partitions: 4, now: () => Date.now() + clock.skew })
    const deps = memoryDeps(echoHandler, log, makeMemoryInbox())
    const hostA = makeInProcessHost(deps)
    const s = openScope()
    scopes.push(s.close)
    const a = await run(
      Scope.extend(makeSupervisor({ host: hostA, log, inbox: deps.inbox, nodeId: "a", leaseTtlMs: 300, baseBackoffMs: 5, maxBackoffMs: 50, actor: { idleWaitMs: 50 } }), s.scope)
    )
    await run(a.startBot("taken"))
    await until(async () => (await run(a.status("taken")))?.state === "running")
    clock.skew = 120_000
    const b = await supervise(deps, { nodeId: "b", leaseTtlMs: 60_000, actor: { idleWaitMs: 50 } })
    await run(b.startBot("taken"))
    await until(async () => (await run(a.status("taken")))?.state === "stopped")
    const closed = await Promise.race([hostA.close().then(() => "closed"), new Promise((r) => setTimeout(() => r("still running"), 3000))])
    expect(closed).toBe("closed")
  }, 30_000)

  it("passivates an idle bot (drained, lease released) and reactivates it on its next input", async () => {
    const deps = memoryDeps()
    const sup = await supervise(deps, { nodeId: "n1", passivateAfterMs: 200, actor: { idleWaitMs: 50 } })
    await run(sup.startBot("sleepy"))
    await run(deps.inbox.enqueue("sleepy", text(1, "hi")))
    await until(async () => (await run(sup.status("sleepy")))?.state === "passivated", 10_000)
    expect(await run(deps.log.readLease("sleepy"))).toBeNull()
    expect((await run(deps.log.readStream("sleepy"))).at(-1)?.data).toMatchObject({ _tag: "BotStopped", reason: "passivated" })
    await run(deps.inbox.enqueue("sleepy", text(2, "again")))
    await until(async () => (await receivedIds(deps.log, "sleepy")).length === 2, 10_000)
    expect(await receivedIds(deps.log, "sleepy")).toEqual([1, 2])
  }, 30_000)

  it("with two nodes, a passivated bot stays unloaded (no node takes it over while it is idle) until its next input", async () => {
    const deps = memoryDeps()
    const a = await supervise(deps, { nodeId: "a", passivateAfterMs: 200, leaseTtlMs: 600, actor: { idleWaitMs: 50 } })
    const b = await supervise(deps, { nodeId: "b", passivateAfterMs: 200, leaseTtlMs: 600, actor: { idleWaitMs: 50 } })
    await run(a.startBot("idle"))
    await until(async () => (await run(a.status("idle")))?.state === "running")
    await run(b.startBot("idle"))
    await run(deps.inbox.enqueue("idle", text(1, "hi")))
    await until(async () => (await receivedIds(deps.log, "idle")).length === 1, 10_000)
    await until(async () => (await run(a.status("idle")))?.state === "passivated", 10_000)
    // several lease waits of node b later: still nobody runs it
    await new Promise((r) => setTimeout(r, 1500))
    expect((await run(b.status("idle")))?.state).toBe("passivated")
    expect(await run(deps.log.readLease("idle"))).toBeNull()
    expect((await types(deps.log, "idle")).filter((t) => t === "BotStarted")).toHaveLength(1)
    // its next input wakes it on exactly one node
    await run(deps.inbox.enqueue("idle", text(2, "again")))
    await until(async () => (await receivedIds(deps.log, "idle")).length === 2, 10_000)
    expect(await receivedIds(deps.log, "idle")).toEqual([1, 2])
  }, 30_000)

  it("never passivates nor evicts a pinned bot (a polling bot: nothing but its own poller would wake it)", async () => {
    const deps = memoryDeps()
    const sup = await supervise(deps, { nodeId: "n1", passivateAfterMs: 200, maxResident: 1, actor: { idleWaitMs: 50 } })
    await run(sup.startBot("poller", { pinned: true }))
    await until(async () => (await run(sup.status("poller")))?.state === "running")
    await run(sup.startBot("hooked"))
    await until(async () => (await run(sup.status("hooked")))?.state === "passivated", 10_000)
    // well past passivateAfterMs, and with the cap at one resident bot: the pinned one stays
    expect((await run(sup.status("poller")))?.state).toBe("running")
    expect(await run(deps.log.readLease("poller"))).not.toBeNull()
  }, 30_000)

  it("keeps at most maxResident actors, evicting the least recently active", async () => {
    const deps = memoryDeps()
    const sup = await supervise(deps, { nodeId: "n1", maxResident: 2, actor: { idleWaitMs: 50 } })
    await run(sup.startBot("r1"))
    await until(async () => (await run(sup.status("r1")))?.state === "running")
    await run(sup.startBot("r2"))
    await until(async () => (await run(sup.status("r2")))?.state === "running")
    await run(sup.startBot("r3"))
    await until(async () => (await run(sup.status("r3")))?.state === "running")
    await until(async () => (await run(sup.status("r1")))?.state === "passivated")
    expect((await run(sup.status("r2")))?.state).toBe("running")
    // an input wakes the evicted bot, which in turn evicts the least recently active one
    await run(deps.inbox.enqueue("r1", text(1, "wake")))
    await until(async () => (await receivedIds(deps.log, "r1")).length === 1, 10_000)
    const states = await Promise.all(["r1", "r2", "r3"].map(async (b) => (await run(sup.status(b)))?.state))
    await until(async () => (await Promise.all(["r1", "r2", "r3"].map(async (b) => (await run(sup.status(b)))?.state))).filter((x) => x === "running").length === 2)
    expect(states).toContain("running")
  }, 30_000)
})
