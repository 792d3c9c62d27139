import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { makePlacement } from "../../src/runtime/balancer.js"
import { assign, isLive, ownerOf } from "../../src/runtime/placement.pure.js"

const botIds = fc.uniqueArray(fc.stringMatching(/^[a-z0-9-]{1,12}$/), { minLength: 0, maxLength: 300 })
const nodeIds = fc.uniqueArray(fc.stringMatching(/^[a-z0-9-]{1,8}$/), { minLength: 1, maxLength: 6 })

describe("placement", () => {
  it("gives every bot to one live node, each node within one bot of an equal share", () => {
    fc.assert(
      fc.property(botIds, nodeIds, (bots, nodes) => {
        const placed = assign(bots, nodes)
        expect(placed.size).toBe(bots.length)
        const counts = new Map(nodes.map((n) => [n, 0]))
        for (const node of placed.values()) counts.set(node, counts.get(node)! + 1)
        const values = [...counts.values()]
        expect(Math.max(...values) - Math.min(...values)).toBeLessThanOrEqual(Math.ceil(bots.length / nodes.length) - Math.floor(bots.length / nodes.length))
      })
    )
  })

  it("is the same on every node: whatever order the bots and nodes are listed in", () => {
    fc.assert(
      fc.property(botIds, nodeIds, (bots, nodes) => {
        expect(assign([...bots].reverse(), [...nodes].reverse())).toEqual(assign(bots, nodes))
      })
    )
  })

  it("never places a bot on a node that refused it, unless every node did (then nowhere)", () => {
    fc.assert(
      fc.property(botIds, nodeIds, fc.nat(), (bots, nodes, seed) => {
        const refusals = new Map(bots.filter((_, i) => (i + seed) % 3 === 0).map((b, i) => [b, new Set([nodes[(i + seed) % nodes.length]!])]))
        const placed = assign(bots, nodes, refusals)
        for (const [bot, node] of placed) expect(refusals.get(bot)?.has(node) ?? false).toBe(false)
        const everyone = new Map(bots.map((b) => [b, new Set(nodes)]))
        expect(assign(bots, nodes, everyone).size).toBe(0)
        expect(ownerOf("x", nodes.map((nodeId) => ({ nodeId })), new Set(nodes))).toBeNull()
      })
    )
  })

  it("moves to a node that joins about its share, and no bot between the nodes that were there when the counts allow", () => {
    const bots = Array.from({ length: 999 }, (_, i) => `bot-${i}`)
    const before = assign(bots, ["a", "b", "c"])
    const after = assign(bots, ["a", "b", "c", "d"])
    const toD = bots.filter((b) => after.get(b) === "d").length
    const moved = bots.filter((b) => before.get(b) !== after.get(b)).length
    expect([249, 250]).toContain(toD)
    // the bound reshuffles a little among the others as their share shrinks; most bots stay put
    expect(moved).toBeLessThan(bots.length / 2)
  })

  it("a node's view: its own bots only, itself always counted live, a refused bot never its own", () => {
    const p = makePlacement("a")
    // before the first look at the registry: every bot (the lease alone decides)
    expect(p.mine("x")).toBe(true)
    const bots = Array.from({ length: 30 }, (_, i) => `bot-${i}`)
    p.update({ liveNodes: ["b"], refusals: new Map(), bots })
    const mine = bots.filter((b) => p.mine(b))
    expect(mine.length).toBe(15)
    p.refuse(mine[0]!)
    expect(p.mine(mine[0]!)).toBe(false)
    // still refused after the next look, even if the registry has not recorded it
    p.update({ liveNodes: ["b"], refusals: new Map(), bots })
    expect(p.mine(mine[0]!)).toBe(false)
  })

  it("counts a node live while it beats within its lease TTL and was not stopped", () => {
    expect(isLive({ heartbeatAgeMs: 100, leaseTtlMs: 1000, stopped: false })).toBe(true)
    expect(isLive({ heartbeatAgeMs: 1001, leaseTtlMs: 1000, stopped: false })).toBe(false)
    expect(isLive({ heartbeatAgeMs: 0, leaseTtlMs: 1000, stopped: true })).toBe(false)
  })
})
