import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { DEDUPE_WINDOW_MS, addSeen, emptyWindow, hasSeen } from "../../../src/actors/decider/dedupeWindow.js"
import type { DedupeWindow } from "../../../src/actors/decider/dedupeWindow.js"

const HOUR = 3_600_000

/**
 * Telegram's model: a bot's update ids rise one by one as updates are made; webhook deliveries
 * run in parallel (ids arrive a little out of order), a failed delivery is retried later (an id
 * arrives late, after higher ones), and any delivered update may be delivered again within 24 h.
 */
const traffic = fc
  .record({
    first: fc.integer({ min: 1, max: 2 ** 40 }),
    count: fc.integer({ min: 1, max: 400 }),
    // how far an update can be overtaken by later ones
    shuffle: fc.array(fc.integer({ min: 0, max: 8 }), { minLength: 400, maxLength: 400 }),
    // updates whose first delivery failed, with how many later ids arrive before it
    late: fc.array(fc.tuple(fc.nat(399), fc.integer({ min: 1, max: 120 })), { maxLength: 30 }),
    redeliveries: fc.array(fc.tuple(fc.nat(399), fc.nat(50)), { maxLength: 200 }),
    gapMs: fc.integer({ min: 1, max: 120_000 })
  })
  .map(({ first, count, shuffle, late, redeliveries, gapMs }) => {
    const ids = Array.from({ length: count }, (_, i) => first + i)
    // local reordering: each id swaps with a near successor
    for (let i = 0; i < ids.length; i++) {
      const j = Math.min(ids.length - 1, i + shuffle[i]!)
      ;[ids[i], ids[j]] = [ids[j]!, ids[i]!]
    }
    // late first deliveries
    for (const [at, by] of late) {
      const i = at % ids.length
      const [id] = ids.splice(i, 1)
      ids.splice(Math.min(ids.length, i + by), 0, id!)
    }
    const steps: Array<{ id: number; redelivery: boolean }> = []
    const delivered: number[] = []
    for (let i = 0; i < ids.length; i++) {
      steps.push({ id: ids[i]!, redelivery: false })
      delivered.push(ids[i]!)
      for (const [at, back] of redeliveries) if (at % ids.length === i && delivered.length > 0) steps.push({ id: delivered[Math.max(0, delivered.length - 1 - back)]!, redelivery: true })
    }
    return { steps, gapMs }
  })

describe("the dedupe window", () => {
  it("drops every redelivery within the window, in any order, and never drops a new id", () => {
    fc.assert(
      fc.property(traffic, ({ steps, gapMs }) => {
        let w: DedupeWindow = emptyWindow
        let t = Date.UTC(2026, 0, 1)
        // spread over at most ~13 h: every redelivery is within Telegram's 24 h
        const step = Math.min(gapMs, Math.floor((13 * HOUR) / steps.length))
        for (const { id, redelivery } of steps) {
          t += step
          expect(hasSeen(w, id, t)).toBe(redelivery)
          if (!redelivery) w = addSeen(w, id, t)
        }
      }),
      { numRuns: 300 }
    )
  }, 60_000)

  it("stays small: sequential traffic is one run however long, and holes cost one run each", () => {
    let w: DedupeWindow = emptyWindow
    const t0 = Date.UTC(2026, 0, 1)
    for (let i = 1; i <= 100_000; i++) w = addSeen(w, i, t0 + i)
    expect(w.runs).toEqual([[1, 100_000, t0 + 100_000]])
    // every other id: 50 runs
    let holes: DedupeWindow = emptyWindow
    for (let i = 0; i < 100; i += 2) holes = addSeen(holes, i, t0)
    expect(holes.runs).toHaveLength(50)
    // the holes filled: one run again
    for (let i = 1; i < 100; i += 2) holes = addSeen(holes, i, t0)
    expect(holes.runs).toEqual([[0, 99, t0]])
  })

  it("is capped: past the cap the smallest hole is filled, and the window never exceeds it", () => {
    const t0 = Date.UTC(2026, 0, 1)
    let w: DedupeWindow = emptyWindow
    // ids with holes of growing size; the 1 at the start leaves the smallest hole (2)
    const ids = [1, 3, ...Array.from({ length: 30 }, (_, i) => 10 + i * (i + 5))]
    for (const id of ids) w = addSeen(w, id, t0, 16)
    expect(w.runs.length).toBeLessThanOrEqual(16)
    // every id added is still seen (merging only ever adds ids)
    for (const id of ids) expect(hasSeen(w, id, t0)).toBe(true)
    // the smallest hole was filled first
    expect(hasSeen(w, 2, t0)).toBe(true)
  })

  it("forgets runs older than the window, so a quiet bot's next ids are new", () => {
    const t0 = Date.UTC(2026, 0, 1)
    let w = addSeen(addSeen(emptyWindow, 10, t0), 11, t0)
    const later = t0 + DEDUPE_WINDOW_MS + 1
    expect(hasSeen(w, 10, later)).toBe(false)
    w = addSeen(w, 500, later)
    expect(w.runs).toEqual([[500, 500, later]])
    // within the window, an id is remembered for at least 24 h
    const w2 = addSeen(emptyWindow, 7, t0)
    expect(hasSeen(w2, 7, t0 + 24 * HOUR)).toBe(true)
  })

  it("keeps every id when the recorded time cannot be read", () => {
    const w = addSeen(emptyWindow, 3, Number.NaN)
    expect(hasSeen(w, 3, Date.UTC(2030, 0, 1))).toBe(true)
    expect(hasSeen(addSeen(emptyWindow, 3, 0), 3, Number.NaN)).toBe(true)
  })
})
