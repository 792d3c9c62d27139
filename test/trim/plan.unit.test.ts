import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { botsOfCut, groupNeeding, nextPosition, partitionCut, streamTrimBelow } from "../../src/trim/plan.pure.js"
import type { GroupMark, TrimEntry } from "../../src/trim/plan.pure.js"
import { comparePositions } from "../../src/projections/mapping/positions.js"

const entry = (seq: number, botId: string | null, version = seq, at = 1_000 + seq): TrimEntry => ({
  position: `${at}-${seq}`,
  recordedAtMs: at,
  event: botId === null ? null : { botId, version, eventId: `e-${botId}-${version}` }
})
const acked = (upTo: string): GroupMark => ({ group: "projections", lastDelivered: upTo, oldestPending: null })

describe("the partition cut", () => {
  const log = [entry(1, "a", 1), entry(2, "b", 1), entry(3, null), entry(4, "a", 2), entry(5, "b", 2)]
  const all = new Map([["a", 10], ["b", 10]])

  it("takes every entry acked by every group, old enough and archived", () => {
    const cut = partitionCut({ entries: log, groups: [acked(log[4]!.position)], watermarks: all, nowMs: 10_000, maxAgeMs: 0 })
    expect(cut).toEqual({ entries: log, held: null })
  })

  it("stops at the first entry a group was not handed yet, or holds pending", () => {
    const lagging: GroupMark = { group: "laggard", lastDelivered: log[3]!.position, oldestPending: log[2]!.position }
    const cut = partitionCut({ entries: log, groups: [acked(log[4]!.position), lagging], watermarks: all, nowMs: 10_000, maxAgeMs: 0 })
    expect(cut.entries).toEqual(log.slice(0, 2))
    expect(cut.held).toEqual({ reason: "NotAcked", position: log[2]!.position, group: "laggard" })
    const fresh: GroupMark = { group: "fresh", lastDelivered: null, oldestPending: null }
    expect(partitionCut({ entries: log, groups: [fresh], watermarks: all, nowMs: 10_000, maxAgeMs: 0 }).entries).toEqual([])
    expect(groupNeeding([acked(log[1]!.position)], log[2]!.position)).toBe("projections")
  })

  it("keeps what was recorded within the age window; an entry of unknown time goes only when a later one is old enough", () => {
    const cut = partitionCut({ entries: log, groups: [acked(log[4]!.position)], watermarks: all, nowMs: 1_004 + 100, maxAgeMs: 100 })
    expect(cut.entries.map((e) => e.position)).toEqual(log.slice(0, 4).map((e) => e.position))
    expect(cut.held).toEqual({ reason: "TooYoung", position: log[4]!.position })
    const unknownLast = [...log.slice(0, 2), { ...log[2]!, recordedAtMs: undefined }]
    expect(partitionCut({ entries: unknownLast, groups: [acked(log[4]!.position)], watermarks: all, nowMs: 99_999, maxAgeMs: 0 }).entries).toHaveLength(2)
    const unknownMiddle = [log[0]!, { ...log[2]!, recordedAtMs: undefined }, log[1]!]
    expect(partitionCut({ entries: unknownMiddle, groups: [acked(log[4]!.position)], watermarks: all, nowMs: 99_999, maxAgeMs: 0 }).entries).toHaveLength(3)
  })

  it("stops at the first stream event its bot's watermark does not cover; foreign entries need no archive", () => {
    const cut = partitionCut({ entries: log, groups: [acked(log[4]!.position)], watermarks: new Map([["a", 10], ["b", 1]]), nowMs: 10_000, maxAgeMs: 0 })
    expect(cut.entries).toEqual(log.slice(0, 4))
    expect(cut.held).toEqual({ reason: "NotArchived", position: log[4]!.position, botId: "b", version: 2 })
    expect(partitionCut({ entries: log, groups: [acked(log[4]!.position)], watermarks: new Map(), nowMs: 10_000, maxAgeMs: 0 }).entries).toEqual([])
  })

  it("never takes an entry that breaks a rule, and always takes a prefix (property)", () => {
    const arb = fc.record({
      entries: fc.array(fc.record({ bot: fc.constantFrom("a", "b", null), dt: fc.nat(50), known: fc.boolean() }), { maxLength: 40 }),
      ackedUpTo: fc.nat(45),
      pendingAt: fc.option(fc.nat(45)),
      wa: fc.nat(30),
      wb: fc.nat(30),
      now: fc.nat(3_000),
      maxAge: fc.nat(2_000)
    })
    fc.assert(
      fc.property(arb, (x) => {
        const versions = new Map<string, number>()
        let t = 0
        const entries: TrimEntry[] = x.entries.map((e, i) => {
          t += e.dt
          const v = e.bot === null ? 0 : (versions.get(e.bot) ?? 0) + 1
          if (e.bot !== null) versions.set(e.bot, v)
          return { position: `${t}-${i}`, recordedAtMs: e.known ? t : undefined, event: e.bot === null ? null : { botId: e.bot, version: v, eventId: `${e.bot}${v}` } }
        })
        const pos = (i: number) => entries[Math.min(i, entries.length - 1)]?.position ?? "0-0"
        const group: GroupMark = { group: "g", lastDelivered: pos(x.ackedUpTo), oldestPending: x.pendingAt === null ? null : pos(x.pendingAt) }
        const watermarks = new Map([["a", x.wa], ["b", x.wb]])
        const cut = partitionCut({ entries, groups: [group], watermarks, nowMs: x.now, maxAgeMs: x.maxAge })
        expect(cut.entries).toEqual(entries.slice(0, cut.entries.length))
        for (const e of cut.entries) {
          expect(comparePositions(e.position, group.lastDelivered!)).toBeLessThanOrEqual(0)
          if (group.oldestPending !== null) expect(comparePositions(e.position, group.oldestPending)).toBeLessThan(0)
          if (e.event) expect(e.event.version).toBeLessThanOrEqual(watermarks.get(e.event.botId)!)
        }
        // old enough: some entry at or after the last one taken has a known time within the cutoff
        const lastTaken = cut.entries.length - 1
        if (lastTaken >= 0) {
          expect(entries.slice(lastTaken).some((e) => e.recordedAtMs !== undefined && e.recordedAtMs <= x.now - x.maxAge)).toBe(true)
        }
        if (cut.entries.length < entries.length) expect(cut.held?.position).toBe(entries[cut.entries.length]!.position)
        else expect(cut.held).toBeNull()
      }),
      { numRuns: 300 }
    )
  })
})

describe("a bot stream's trim bound", () => {
  const base = { highestInCut: 100, snapshotVersion: 100, watermark: 100, streamVersion: 200, hotEvents: 10 }
  it("is the smallest of the versions that must stay", () => {
    expect(streamTrimBelow(base)).toBe(101)
    expect(streamTrimBelow({ ...base, snapshotVersion: 40 })).toBe(41)
    expect(streamTrimBelow({ ...base, watermark: 30 })).toBe(31)
    expect(streamTrimBelow({ ...base, highestInCut: 20 })).toBe(21)
    expect(streamTrimBelow({ ...base, streamVersion: 105 })).toBe(96)
  })
  it("never trims a bot without a snapshot, and never empties a stream", () => {
    expect(streamTrimBelow({ ...base, snapshotVersion: 0 })).toBe(1)
    expect(streamTrimBelow({ ...base, streamVersion: 100, hotEvents: 0 })).toBe(100)
  })
  it("names each bot of a cut with its highest version there", () => {
    expect([...botsOfCut([entry(1, "a", 3), entry(2, null), entry(3, "b", 1), entry(4, "a", 4)])]).toEqual([["a", 4], ["b", 1]])
  })
})

describe("the position after a position", () => {
  it("is just above it, in every adapter's format", () => {
    for (const p of ["1700000000000-0", "1700000000000-41", "812-77", "12", "18446744073709551615-9007199254740993"]) {
      const n = nextPosition(p)
      expect(comparePositions(p, n)).toBe(-1)
    }
    expect(nextPosition("1700000000000-41")).toBe("1700000000000-42")
    expect(nextPosition("12")).toBe("13")
  })
})
