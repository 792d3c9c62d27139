import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { BotActor } from "../../src/actors/actor.js"
import type { ActorDeps } from "../../src/actors/actor.js"
import { echoHandler } from "../../src/actors/decider/updateHandler.js"
import type { UpdateHandler } from "../../src/actors/decider/updateHandler.js"
import { makeMemoryInbox } from "../../src/actors/memoryInbox.js"
import { makeMemorySnapshotStore } from "../../src/actors/snapshotStore.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"

const run = Effect.runPromise
const text = (updateId: number, body: string) => ({
  update_id: updateId,
  message: { message_id: updateId, chat: { id: 1, type: "private" }, from: { id: 2 }, text: body }
})
const setup = (handler: UpdateHandler = echoHandler) => {
  const deps: ActorDeps = { log: makeMemoryEventLog({ partitions: 4 }), inbox: makeMemoryInbox(), snapshots: makeMemorySnapshotStore(), handlerFor: () => handler }
  return deps
}
const types = async (deps: ActorDeps, botId: string) => (await run(deps.log.readStream(botId))).map((e) => e.type)
const until = async (cond: () => Promise<boolean> | boolean) => {
  for (let i = 0; i < 500 && !(await cond()); i++) await new Promise((r) => setTimeout(r, 5))
  expect(await cond()).toBe(true)
}

describe("bot actor (in memory)", () => {
  it("handles inbox entries, drops duplicates, applies config live, and drains on stop", async () => {
    const deps = setup()
    const lease = (await run(deps.log.acquireLease("b1", "n1", 60_000)))!
    const actor = new BotActor(deps, { botId: "b1", nodeId: "n1", fence: lease.fence, snapshotEvery: 5, idleWaitMs: 50 })
    const done = actor.run()
    await run(deps.inbox.enqueue("b1", text(1, "a")))
    await run(deps.inbox.enqueue("b1", text(1, "a")))
    await run(deps.inbox.enqueue("b1", text(2, "b")))
    await until(async () => (await actor.send({ _tag: "Status" })).updatesHandled === 2 && actor.status().duplicatesDropped === 1)
    const s = await actor.send({ _tag: "ChangeConfig", patch: { tone: "dry" } })
    expect(s.config).toEqual({ tone: "dry" })
    await actor.send({ _tag: "Stop", reason: "drain" })
    const final = await done
    expect(final.status).toBe("stopped")
    expect(await types(deps, "b1")).toEqual([
      "BotStarted",
      "UpdateReceived", "MessageReceived", "ReplySent",
      "UpdateDuplicateDropped",
      "UpdateReceived", "MessageReceived", "ReplySent",
      "BotConfigChanged",
      "BotStopped"
    ])
    expect((await run(deps.snapshots.load("b1")))?.version).toBe(10)
  })

  it("resumes after a restart from snapshot + tail without handling anything twice", async () => {
    const deps = setup()
    const lease = (await run(deps.log.acquireLease("b2", "n1", 60_000)))!
    for (let i = 1; i <= 7; i++) await run(deps.inbox.enqueue("b2", text(i, `m${i}`)))
    const first = new BotActor(deps, { botId: "b2", nodeId: "n1", fence: lease.fence, snapshotEvery: 4, idleWaitMs: 50 })
    const d1 = first.run()
    await until(() => first.status().updatesHandled === 7)
    await first.send({ _tag: "Stop", reason: "restart" })
    await d1
    for (let i = 8; i <= 9; i++) await run(deps.inbox.enqueue("b2", text(i, `m${i}`)))
    await run(deps.inbox.enqueue("b2", text(3, "m3 again")))
    const second = new BotActor(deps, { botId: "b2", nodeId: "n1", fence: lease.fence, idleWaitMs: 50 })
    const d2 = second.run()
    await until(() => second.status().updatesHandled === 9 && second.status().duplicatesDropped === 1)
    await second.send({ _tag: "Stop", reason: "done" })
    await d2
    const received = (await run(deps.log.readStream("b2"))).filter((e) => e.data._tag === "UpdateReceived").map((e) => (e.data as { updateId: number }).updateId)
    expect(received).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9])
  })

  it("dead-letters the input its handler throws on, with the reason, and goes on", async () => {
    const deps = setup({
      handle: (ctx) => {
        if (ctx.update.message?.text === "boom") throw new TypeError("cannot handle boom")
        return echoHandler.handle(ctx)
      }
    })
    const lease = (await run(deps.log.acquireLease("b3", "n1", 60_000)))!
    const actor = new BotActor(deps, { botId: "b3", nodeId: "n1", fence: lease.fence, idleWaitMs: 50 })
    const done = actor.run()
    await run(deps.inbox.enqueue("b3", text(1, "boom")))
    await run(deps.inbox.enqueue("b3", text(2, "fine")))
    await until(() => actor.status().updatesHandled === 1 && actor.status().updatesFailed === 1)
    await actor.send({ _tag: "Stop", reason: "done" })
    await done
    const dead = await run(deps.inbox.readDeadLetters("b3"))
    expect(dead).toHaveLength(1)
    expect(dead[0]!.reason).toBe("TypeError: cannot handle boom")
    expect((dead[0]!.update as { update_id: number }).update_id).toBe(1)
    const failed = (await run(deps.log.readStream("b3"))).find((e) => e.type === "UpdateFailed")
    expect(failed?.data).toMatchObject({ updateId: 1, reason: "TypeError: cannot handle boom" })
  })

  it("stops with LeaseLost once another node took the lease, writing nothing more", async () => {
    const now = { t: 1_000_000 }
    const deps: ActorDeps = { ...setup(), log: makeMemoryEventLog({ partitions: 4, now: () => now.t }) }
    const lease = (await run(deps.log.acquireLease("b4", "n1", 1000)))!
    const actor = new BotActor(deps, { botId: "b4", nodeId: "n1", fence: lease.fence, idleWaitMs: 50 })
    const done = actor.run()
    await until(() => actor.status().status === "running")
    now.t += 5000
    const theirs = (await run(deps.log.acquireLease("b4", "n2", 1000)))!
    expect(theirs.fence).toBeGreaterThan(lease.fence)
    await run(deps.inbox.enqueue("b4", text(1, "hi")))
    await expect(done).rejects.toMatchObject({ _tag: "LeaseLost" })
    expect(await types(deps, "b4")).toEqual(["BotStarted"])
    // a command sent to the dead actor is answered with why it died, not left waiting forever
    await expect(actor.send({ _tag: "Stop", reason: "too late" })).rejects.toMatchObject({ _tag: "LeaseLost" })
  })

  it("answers Status at once without breaking an idle wait (each re-wait re-issues its partition's blocking read)", async () => {
    const base = setup()
    let waits = 0
    const deps: ActorDeps = { ...base, inbox: { ...base.inbox, waitFor: (...args) => (waits++, base.inbox.waitFor(...args)) } }
    const lease = (await run(deps.log.acquireLease("b5", "n1", 60_000)))!
    const actor = new BotActor(deps, { botId: "b5", nodeId: "n1", fence: lease.fence })
    const done = actor.run()
    await until(() => waits === 1)
    for (let i = 0; i < 20; i++) expect((await actor.send({ _tag: "Status" })).status).toBe("running")
    expect(waits).toBe(1)
    // the wait still ends for input, and the status then reflects it
    await run(deps.inbox.enqueue("b5", text(1, "hi")))
    await until(async () => (await actor.send({ _tag: "Status" })).updatesHandled === 1)
    await actor.send({ _tag: "Stop", reason: "done" })
    expect((await done).updatesHandled).toBe(1)
  })
})
