import { Effect, Scope } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import type { ActorDeps } from "../../src/actors/actor.js"
import { echoHandler } from "../../src/actors/decider/updateHandler.js"
import { makeInProcessHost } from "../../src/actors/inProcessHost.js"
import { InboxUnavailable } from "../../src/actors/inbox.js"
import type { InboxService } from "../../src/actors/inbox.js"
import { makeMemoryInbox } from "../../src/actors/memoryInbox.js"
import { makeMemorySnapshotStore } from "../../src/actors/snapshotStore.js"
import { makeSupervisor } from "../../src/actors/supervisor.js"
import type { SupervisorOptions } from "../../src/actors/supervisor.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { renderMetrics } from "../../src/metrics/registry.js"
import { sumOf } from "../metrics/support.js"
import { openScope, receivedIds, run, text, until } from "./support.js"

/* What a node's supervisor reports to /metrics: restarts by cause, give-ups, lease takeovers. */

const scopes: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const close of scopes.splice(0)) await close()
})

const supervise = async (deps: ActorDeps, o: Partial<SupervisorOptions> & { nodeId: string }) => {
  const s = openScope()
  scopes.push(s.close)
  return run(Scope.extend(makeSupervisor({ host: makeInProcessHost(deps), log: deps.log, inbox: deps.inbox, baseBackoffMs: 5, maxBackoffMs: 50, ...o }), s.scope))
}
const memoryDeps = (log: EventLogService, inbox: InboxService): ActorDeps => ({ log, inbox, snapshots: makeMemorySnapshotStore(), handlerFor: () => echoHandler })
const metric = async (name: string, labels: Record<string, string> = {}) => sumOf(await renderMetrics(), name, labels)

describe("supervisor metrics", () => {
  it("counts crashes and outages as restarts by cause, and a bot given up on", async () => {
    const crashes = await metric("botfleet_actor_restarts_total", { cause: "crash" })
    const outages = await metric("botfleet_actor_restarts_total", { cause: "outage" })
    const giveUps = await metric("botfleet_bot_giveups_total")
    const base = makeMemoryInbox()
    let outage = 2
    // the bot's inbox is down twice (outages), then every run dies on a bug (crashes) until the budget is spent
    const inbox: InboxService = {
      ...base,
      readAfter: () =>
        outage > 0 ? Effect.suspend(() => (outage--, Effect.fail(new InboxUnavailable({ operation: "readAfter", cause: "failover" })))) : Effect.die(new Error("bug"))
    }
    const sup = await supervise(memoryDeps(makeMemoryEventLog({ partitions: 2 }), inbox), { nodeId: "n1", restartBudget: 2 })
    await run(sup.startBot("doomed"))
    await until(async () => (await run(sup.status("doomed")))?.state === "failed", 20_000)
    expect((await metric("botfleet_actor_restarts_total", { cause: "outage" })) - outages).toBe(2)
    expect((await metric("botfleet_actor_restarts_total", { cause: "crash" })) - crashes).toBe(3)
    expect((await metric("botfleet_bot_giveups_total")) - giveUps).toBe(1)
  }, 30_000)

  it("counts a takeover when a node gets a lease another node held, not when it starts a free bot", async () => {
    const takeovers = await metric("botfleet_lease_takeovers_total")
    const log = makeMemoryEventLog({ partitions: 2 })
    const inbox = makeMemoryInbox()
    const lease = { leaseTtlMs: 1000, leaseRenewMs: 100, actor: { idleWaitMs: 50 } }
    const a = await supervise(memoryDeps(log, inbox), { nodeId: "a", ...lease })
    await run(a.startBot("handed"))
    await until(async () => (await run(a.status("handed")))?.state === "running")
    expect(await metric("botfleet_lease_takeovers_total")).toBe(takeovers)
    const b = await supervise(memoryDeps(log, inbox), { nodeId: "b", ...lease })
    await run(b.startBot("handed"))
    await until(async () => (await run(b.status("handed")))?.state === "waiting")
    await run(a.stopBot("handed"))
    await until(async () => (await run(b.status("handed")))?.state === "running", 10_000)
    await run(inbox.enqueue("handed", text(1, "who is there?")))
    await until(async () => (await receivedIds(log, "handed")).length === 1)
    expect((await metric("botfleet_lease_takeovers_total")) - takeovers).toBe(1)
  }, 30_000)
})
