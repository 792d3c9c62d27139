import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import { fold } from "../../../src/actors/decider/state.js"
import { legacySessionTarget } from "../../../src/actors/decider/legacy.js"
import { parseLegacyFile } from "../../../src/cli/import/legacyFile.pure.js"
import { importEvents } from "../../../src/cli/import/plan.pure.js"
import { recordSlot, verifyImport } from "../../../src/cli/import/verify.pure.js"
import type { ProjectedImport } from "../../../src/cli/import/verify.pure.js"
import type { DomainEvent } from "../../../src/events/schema/catalogue.js"

const sha = (t: string) => createHash("sha256").update(t).digest("hex")
const parsed = parseLegacyFile("s.json", readFileSync(new URL("../../fixtures/legacy/sessions.json", import.meta.url), "utf8"), sha)
if (!parsed.ok) throw new Error("fixture")
const records = parsed.parsed.records
const events = importEvents(records, { runId: "r", occurredAt: "2026-12-01T00:00:00.000Z" }).map((e) => e.data as DomainEvent)
const registered: DomainEvent = { _tag: "BotRegistered", ownerId: "o", name: "b", kind: "builtin", mode: "sandbox" }

/** The projections exactly as the records say. */
const projectedOf = (): ProjectedImport => ({
  records: new Map(records.map((r) => [recordSlot(r.collection, r.key), r.record])),
  sessions: new Map(records.filter((r) => r.collection === "sessions").map((r) => [legacySessionTarget(r.key).key, { data: r.record, version: 2 }])),
  users: new Set([42, 1001]),
  chats: new Set()
})

describe("verifyImport", () => {
  it("a state and projections made from the files match them", () => {
    const r = verifyImport(records, fold([registered, ...events]).entries, events.length + 1, new Set(), projectedOf(), sha)
    expect(r.differences).toEqual([])
    expect(r.ok).toBe(true)
  })

  it("a record the state lacks or holds otherwise is a difference in the state", () => {
    const others = events.filter((e) => !(e._tag === "LegacyRecordImported" && e.key === "1"))
    const changed: DomainEvent = { _tag: "SessionChanged", key: "42:42", patch: { lastInlineQuery: "dogs" } }
    const r = verifyImport(records, fold([registered, ...others, changed]).entries, 9, new Set(), projectedOf(), sha)
    expect(r.ok).toBe(false)
    expect(r.differences.map((d) => `${d.collection} ${d.key} ${d.place} ${d.problem}`)).toEqual([
      "sessions 42:42 state content differs",
      "data.todos 1 state missing"
    ])
    expect(r.collections.find((c) => c.collection === "data.todos")).toMatchObject({ inFiles: 2, inState: 1, inProjections: 2, matched: 1, different: 1 })
  })
})
