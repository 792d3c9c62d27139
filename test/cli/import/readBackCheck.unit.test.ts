import { describe, expect, it } from "vitest"
import { sha256 } from "../../../src/cli/import/importer.js"
import { canonicalJson, sameJson } from "../../../src/cli/import/json.pure.js"
import { foldImported, reconcile, recordsBySlot } from "../../../src/cli/import/plan.pure.js"
import { recordChecksum } from "../../../src/cli/import/records.pure.js"
import type { LegacyRecord } from "../../../src/cli/import/records.pure.js"

const rec = (key: string, record: unknown): LegacyRecord => ({
  collection: "users",
  key,
  record,
  source: `users.json#$.users[${key}]`,
  checksum: recordChecksum("users", key, record, sha256)
})
const imported = (version: number, r: LegacyRecord, record: unknown = r.record, checksum = r.checksum) => ({
  version,
  data: { _tag: "LegacyRecordImported", importId: checksum.slice(0, 32), collection: r.collection, key: r.key, record, source: r.source, checksum }
})

describe("sameJson", () => {
  const values: ReadonlyArray<unknown> = [
    null, 0, -0, 1, 1.5, "", "a", "0", true, false, [], {}, [null], [[]], [{}], { a: 1 }, { a: "1" }, { a: 1, b: 2 }, { b: 2, a: 1 },
    { a: undefined, b: 2 }, { b: 2 }, { a: [1, { c: null }] }, { a: [1, { c: false }] }, [1, 2], [2, 1], { "": 0 }, { a: {} }, { a: [] }
  ]
  it("holds exactly when the canonical JSON texts are equal", () => {
    for (const a of values) for (const b of values) expect([a, b, sameJson(a, b)]).toEqual([a, b, canonicalJson(a) === canonicalJson(b)])
  })
})

describe("folding records read back", () => {
  const a = rec("1", { name: "Zoë", tags: ["x"] })
  const b = rec("2", { name: "Ann" })
  const check = { hash: sha256, fileRecords: recordsBySlot([a, b]) }

  it("keeps the newest version of a record whatever order the pages arrive in", () => {
    const older = imported(2, b, { name: "Old" }, recordChecksum("users", "2", { name: "Old" }, sha256))
    const newer = imported(5, b)
    for (const pages of [[[older], [newer]], [[newer], [older]]]) {
      const index = new Map()
      for (const page of pages) foldImported(index, page, check)
      expect(index.get("users\u00002")).toMatchObject({ version: 5, checksum: b.checksum, actualChecksum: b.checksum })
    }
  })

  it("leaves out events past the range read", () => {
    const index = foldImported(new Map(), [imported(3, a), imported(9, b)], check, 8)
    expect([...index.values()].map((e) => e.key)).toEqual(["1"])
  })

  it("hashes a record that differs from the files, so the reconciliation names it", () => {
    // same key order or not, an equal record takes the files' checksum; a changed one is hashed
    const index = foldImported(new Map(), [imported(2, a, { tags: ["x"], name: "Zoë" }), imported(3, b, { name: "Ann", extra: 1 })], check)
    expect(index.get("users\u00001")?.actualChecksum).toBe(a.checksum)
    expect(index.get("users\u00002")?.actualChecksum).toBe(recordChecksum("users", "2", { name: "Ann", extra: 1 }, sha256))
    const r = reconcile([a, b], index)
    expect(r.ok).toBe(false)
    expect(r.differences).toEqual([{ collection: "users", key: "2", source: b.source, problem: "content differs" }])
  })

  it("gives the same checksums with and without the files to compare against", () => {
    const events = [imported(2, a), imported(3, b, { name: "Bob" })]
    const compared = foldImported(new Map(), events, check)
    const hashed = foldImported(new Map(), events, { hash: sha256 })
    expect([...compared.values()]).toEqual([...hashed.values()])
  })
})
