import { afterEach, describe, expect, it, vi } from "vitest"
import type { ActorStatus } from "../../src/actors/actor.js"
import type { ActorHandle, ActorHost, ActorSpec, Placement } from "../../src/actors/host.js"
import { OVERFLOW, makeOwnerHosts } from "../../src/actors/ownerHosts.js"

/** A host that records what it started and lets the test end each actor. */
const fakeHost = (name: string) => {
  const started: Array<{ botId: string; end: () => void; die: () => void }> = []
  let closed = false
  const host: ActorHost = {
    start: (spec: ActorSpec) => {
      let end!: () => void
      let die!: () => void
      const done = new Promise<ActorStatus>((resolve, reject) => {
        end = () => resolve({} as ActorStatus)
        die = () => reject(new Error("thread died"))
      })
      done.catch(() => undefined)
      started.push({ botId: spec.botId, end, die })
      return { botId: spec.botId, started: done, done, send: () => done, health: () => ({ beatAt: 0, busySince: null }), abort: () => undefined } satisfies ActorHandle
    },
    close: async () => void (closed = true)
  }
  return { name, host, started, isClosed: () => closed }
}

const spec = (botId: string): ActorSpec => ({ botId, nodeId: "n", fence: 1 })
const place = (ownerId: string, kind = "custom"): Placement => ({ ownerId, kind })

afterEach(() => vi.useRealTimers())

describe("owner hosts: owners' code apart from each other and from the fleet's", () => {
  const setup = (maxOwners: number) => {
    const shared = fakeHost("shared")
    const opened = new Map<string, ReturnType<typeof fakeHost>>()
    const overflowed: string[] = []
    const host = makeOwnerHosts({
      shared: shared.host,
      maxOwners,
      idleCloseMs: 1000,
      open: (key) => {
        const h = fakeHost(key)
        opened.set(key, h)
        return h.host
      },
      onOverflow: (o) => overflowed.push(o)
    })
    return { host, shared, opened, overflowed }
  }

  it("runs built-in bots (and bots placed without an owner) on the shared host, each owner's kinds on a host of that owner", () => {
    const { host, shared, opened } = setup(4)
    host.start(spec("b1"), place("alice", "builtin"))
    host.start(spec("b2"))
    host.start(spec("a1"), place("alice"))
    host.start(spec("a2"), place("alice", "other-kind"))
    host.start(spec("z1"), place("zoe"))
    expect(shared.started.map((s) => s.botId)).toEqual(["b1", "b2"])
    expect([...opened.keys()]).toEqual(["alice", "zoe"])
    expect(opened.get("alice")!.started.map((s) => s.botId)).toEqual(["a1", "a2"])
    expect(opened.get("zoe")!.started.map((s) => s.botId)).toEqual(["z1"])
  })

  it("past the cap, further owners share one overflow host, and the operator is told", () => {
    const { host, opened, overflowed } = setup(1)
    host.start(spec("a1"), place("alice"))
    host.start(spec("b1"), place("bob"))
    host.start(spec("c1"), place("carol"))
    host.start(spec("a2"), place("alice"))
    host.start(spec("b2"), place("bob"))
    expect([...opened.keys()]).toEqual(["alice", OVERFLOW])
    expect(opened.get(OVERFLOW)!.started.map((s) => s.botId)).toEqual(["b1", "c1", "b2"])
    expect(opened.get("alice")!.started.map((s) => s.botId)).toEqual(["a1", "a2"])
    expect(overflowed).toEqual(["bob", "carol"])
  })

  it("closes an owner's host once it has had no actor for idleCloseMs, and opens a new one when the owner comes back", async () => {
    vi.useFakeTimers()
    const { host, opened } = setup(2)
    host.start(spec("a1"), place("alice"))
    const first = opened.get("alice")!
    first.started[0]!.die() // its thread died: the actor is gone
    await vi.advanceTimersByTimeAsync(500)
    // back within the delay: the same host
    host.start(spec("a1"), place("alice"))
    expect(first.started).toHaveLength(2)
    first.started[1]!.end()
    await vi.advanceTimersByTimeAsync(1500)
    expect(first.isClosed()).toBe(true)
    host.start(spec("a1"), place("alice"))
    expect(opened.get("alice")).not.toBe(first)
  })

  it("close closes the shared host and every owner's", async () => {
    const { host, shared, opened } = setup(2)
    host.start(spec("a1"), place("alice"))
    host.start(spec("b1"), place("bob"))
    await host.close()
    expect(shared.isClosed()).toBe(true)
    expect([...opened.values()].every((h) => h.isClosed())).toBe(true)
  })
})
