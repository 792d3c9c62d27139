import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { backupName, byAge, toDelete } from "../../../src/ops/backups/retention.pure.js"

describe("backup names and retention", () => {
  it("names a backup after its UTC time, with a suffix when taken", () => {
    expect(backupName("2026-11-26T03:00:00.000Z", new Set())).toBe("backup-20261126T030000Z")
    expect(backupName("2026-11-26T03:00:00.000Z", new Set(["backup-20261126T030000Z", "backup-20261126T030000Z-2"]))).toBe("backup-20261126T030000Z-3")
    expect(["backup-20261126T030000Z-10", "backup-20261126T030000Z-2", "backup-20251126T030000Z", "backup-20261126T030000Z"].sort(byAge)).toEqual([
      "backup-20251126T030000Z", "backup-20261126T030000Z", "backup-20261126T030000Z-2", "backup-20261126T030000Z-10"
    ])
  })

  it("deletes the oldest finished backups beyond keep, and unfinished leftovers older than the newest finished one", () => {
    const b = (t: string, finished = true) => ({ name: `backup-20261126T${t}Z`, finished })
    expect(toDelete([b("010000"), b("020000", false), b("030000"), b("040000"), b("050000", false)], 2)).toEqual(["backup-20261126T010000Z", "backup-20261126T020000Z"])
    expect(toDelete([b("010000", false)], 1)).toEqual([])
    expect(toDelete([{ name: "my-own-folder", finished: true }, b("010000"), b("020000")], 1)).toEqual(["backup-20261126T010000Z"])
  })

  it("always keeps the newest `keep` finished backups and the newest unfinished one (property)", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 86_399 }), { minLength: 1, maxLength: 30 }), fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }), fc.integer({ min: 1, max: 10 }), (secs, fin, keep) => {
        const backups = secs.map((s, i) => ({ name: backupName(new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString(), new Set()), finished: fin[i]! }))
        const deleted = new Set(toDelete(backups, keep))
        const finished = backups.filter((x) => x.finished).map((x) => x.name).sort(byAge)
        for (const name of finished.slice(-keep)) expect(deleted.has(name)).toBe(false)
        expect(finished.filter((n) => !deleted.has(n))).toHaveLength(Math.min(keep, finished.length))
        const unfinished = backups.filter((x) => !x.finished).map((x) => x.name).sort(byAge)
        const newestUnfinished = unfinished.at(-1)
        if (newestUnfinished !== undefined && (finished.length === 0 || byAge(newestUnfinished, finished.at(-1)!) > 0)) expect(deleted.has(newestUnfinished)).toBe(false)
      })
    )
  })
})
