import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Either } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { importLegacy } from "../../../src/cli/import/importer.js"
import { readWholeStream } from "../../../src/cli/streamReader.js"
import type { ImportOptions } from "../../../src/cli/import/importer.js"
import { LogUnavailable } from "../../../src/events/errors.js"
import { EventLog } from "../../../src/events/eventLog.js"
import type { EventLogService } from "../../../src/events/eventLog.js"
import { makeMemoryEventLog } from "../../../src/events/memoryEventLog.js"
import { appendNewBot, legacyBotRegistered } from "../../support/events.js"

/*
 * The legacy import end to end on the memory log (the adapters run the same code path in
 * importer.adapters.int.test.ts): fixtures on disk, real files, events read back.
 */

const fixture = (name: string) => fileURLToPath(new URL(`../../fixtures/legacy/${name}`, import.meta.url))
let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "bf-import-"))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const registerBot = (log: EventLogService, botId: string) => appendNewBot(log, botId, [legacyBotRegistered])

const setup = async (botId = "legacy-bot") => {
  const log = makeMemoryEventLog()
  await registerBot(log, botId)
  const run = (files: ReadonlyArray<string>, extra: Partial<ImportOptions> = {}) =>
    Effect.runPromise(Effect.either(importLegacy({ botId, files, ...extra }).pipe(Effect.provideService(EventLog, log))))
  const events = () => Effect.runPromise(readWholeStream(log, botId))
  return { log, run, events }
}

describe("legacy import", () => {
  it("imports every record of both layouts, and the reconciliation matches counts and checksums", async () => {
    const { run, events } = await setup()
    const r = Either.getOrThrow(await run([fixture("sessions.json"), fixture("generic.json")]))
    const totals = Object.fromEntries(r.plan.collections.map((c) => [c.collection, c.inFiles]))
    expect(totals).toEqual({
      sessions: 5,
      "data.todos": 2,
      "data.counters": 2,
      "data.schemaVersion": 1,
      "data.archived": 1,
      users: 3,
      chats: 2,
      messages: 3,
      settings: 5
    })
    expect(r.plan.totals).toMatchObject({ inFiles: 24, new: 24, changed: 0, unchanged: 0 })
    expect(r.appended).toEqual({ fromVersion: 2, toVersion: 25, events: 24 })
    expect(r.reconciliation?.ok).toBe(true)
    expect(r.reconciliation?.collections.every((c) => c.matched === c.inFiles && c.inLog === c.inFiles)).toBe(true)

    const imported = (await events()).filter((e) => e.data._tag === "LegacyRecordImported")
    expect(imported).toHaveLength(24)
    expect(new Set(imported.map((e) => e.actor))).toEqual(new Set([`import:${r.runId}`]))
    const session = imported.find((e) => e.data._tag === "LegacyRecordImported" && e.data.key === "-1001234567890:42")!
    expect(session.data).toMatchObject({
      collection: "sessions",
      source: `${fixture("sessions.json")}#$.sessions[0].data`,
      record: expect.objectContaining({ name: 'Zoë 🐱 — "quoted" \\ back\\slash\ttab\nnewline', zeroWidth: "a\u200bb", nothing: null, emptyArray: [] })
    })
  })

  it("imports nothing the second time, and only what changed after an edit", async () => {
    const { run, events, log } = await setup()
    Either.getOrThrow(await run([fixture("generic.json")]))
    const v1 = (await events()).length
    const again = Either.getOrThrow(await run([fixture("generic.json")]))
    expect(again.appended).toBeUndefined()
    expect(again.plan.totals).toMatchObject({ new: 0, changed: 0, unchanged: 13 })
    expect(again.reconciliation?.ok).toBe(true)
    expect((await events()).length).toBe(v1)

    const edited = join(dir, "edited.json")
    await writeFile(edited, JSON.stringify({ users: [{ id: 42, first_name: "Zoë", last_name: "Changed" }, { id: 7, first_name: "New" }] }))
    const third = Either.getOrThrow(await run([edited]))
    expect(third.plan.totals).toMatchObject({ new: 1, changed: 1, unchanged: 0 })
    expect(third.appended?.events).toBe(2)
    expect(third.reconciliation?.ok).toBe(true)
    expect(await Effect.runPromise(log.streamVersion("legacy-bot"))).toBe(v1 + 2)
  })

  it("a dry run reports the plan and writes nothing", async () => {
    const { run, events } = await setup()
    const r = Either.getOrThrow(await run([fixture("sessions.json")], { dryRun: true }))
    expect(r.dryRun).toBe(true)
    expect(r.plan.totals.new).toBe(11)
    expect(r.reconciliation).toBeUndefined()
    expect(await events()).toHaveLength(1)
  })

  it("refuses malformed input with file, JSON path and reason, writing nothing even for the good files", async () => {
    const { run, events } = await setup()
    const r = await run([fixture("generic.json"), fixture("broken.json"), fixture("empty.json"), fixture("duplicate-sessions.json"), fixture("bad-generic.json"), fixture("big-number.json"), join(dir, "missing.json")])
    if (Either.isRight(r)) throw new Error("expected a refusal")
    expect(r.left._tag).toBe("ImportRefused")
    const lines = r.left.message.split("\n")
    expect(lines[0]).toMatch(/^import refused, nothing was written: 9 problems/)
    const at = (file: string) => lines.filter((l) => l.includes(`${file}: `)).map((l) => l.slice(l.indexOf(`${file}: `) + file.length + 2))
    expect(at("broken.json")).toEqual([expect.stringMatching(/^\$: not valid JSON at line 5, column 3/)])
    expect(at("empty.json")).toEqual([expect.stringMatching(/^\$: the file is empty \(0 bytes\)/)])
    expect(at("duplicate-sessions.json")).toEqual(['$.sessions[2].id: duplicate session id "10:20", first at $.sessions[0].id'])
    expect(at("bad-generic.json")).toHaveLength(4)
    expect(at("big-number.json")).toEqual([expect.stringMatching(/^\$\.sessions\[0\]\.data\.orderId: the number/)])
    expect(at("missing.json")).toEqual(["$: cannot read the file (ENOENT): check the path and permissions"])
    expect(await events()).toHaveLength(1)
  })

  it("refuses two different records under one key across files, naming both", async () => {
    const { run } = await setup()
    const r = await run([fixture("generic.json"), fixture("conflicting.json")])
    if (Either.isRight(r)) throw new Error("expected a refusal")
    expect(r.left.message).toContain(`conflicting.json: $.users[0]: a different users record with key "42" is also at ${fixture("generic.json")}#$.users[0]`)
  })

  it("counts a record repeated identically in two files once", async () => {
    const { run } = await setup()
    const r = Either.getOrThrow(await run([fixture("generic.json"), fixture("generic.json")]))
    expect(r.repeated).toBe(13)
    expect(r.appended?.events).toBe(13)
  })

  it("accepts an empty store and imports nothing from it", async () => {
    const { run } = await setup()
    const r = Either.getOrThrow(await run([fixture("empty-store.json")]))
    expect(r.plan.totals.inFiles).toBe(0)
    expect(r.reconciliation?.ok).toBe(true)
  })

  it("imports a huge store (20,000 sessions) and reconciles every record", async () => {
    const { run, events } = await setup()
    const huge = join(dir, "huge.json")
    const sessions = Array.from({ length: 20_000 }, (_, i) => ({ id: `${-1000 - (i % 50)}:${i}`, data: { i, text: `сообщение ${i} ✓`, tags: [i % 3, "x"], ok: i % 2 === 0 } }))
    await writeFile(huge, JSON.stringify({ sessions }))
    const r = Either.getOrThrow(await run([huge]))
    expect(r.appended?.events).toBe(20_000)
    expect(r.reconciliation).toMatchObject({ ok: true, differenceCount: 0 })
    expect(await events()).toHaveLength(20_001)
  })

  it("writes a large import in several appends and, when cut short, finishes it on the next run", async () => {
    const { log, run, events } = await setup()
    let appends = 0
    const flaky: EventLogService = {
      ...log,
      append: (req) => (++appends === 2 ? Effect.fail(new LogUnavailable({ operation: "append", cause: new Error("connection reset") })) : log.append(req))
    }
    const cut = await Effect.runPromise(
      Effect.either(importLegacy({ botId: "legacy-bot", files: [fixture("sessions.json")], maxEventsPerAppend: 4 }).pipe(Effect.provideService(EventLog, flaky)))
    )
    if (Either.isRight(cut)) throw new Error("expected the import to be cut short")
    expect(cut.left.message).toMatch(/stopped after 4 of 11 records: .*connection reset\nRun the same import again to finish it/)
    expect(await events()).toHaveLength(5)
    const resumed = Either.getOrThrow(await run([fixture("sessions.json")], { maxEventsPerAppend: 4 }))
    expect(resumed.plan.totals).toMatchObject({ new: 7, unchanged: 4 })
    expect(resumed.appended).toEqual({ fromVersion: 6, toVersion: 12, events: 7 })
    expect(resumed.reconciliation?.ok).toBe(true)
  })

  it("reconciliation reports records the log does not give back intact", async () => {
    const { log } = await setup()
    // a log that loses a field of one record and drops another on the way back
    const lossy: EventLogService = {
      ...log,
      readStream: (botId, opts) =>
        Effect.map(log.readStream(botId, opts), (events) =>
          events
            .filter((e) => !(e.data._tag === "LegacyRecordImported" && e.data.collection === "chats" && e.data.key === "42"))
            .map((e) =>
              e.data._tag === "LegacyRecordImported" && e.data.collection === "users" && e.data.key === "42"
                ? { ...e, data: { ...e.data, record: { ...(e.data.record as object), last_name: undefined } } }
                : e
            )
        )
    }
    const r = Either.getOrThrow(
      await Effect.runPromise(Effect.either(importLegacy({ botId: "legacy-bot", files: [fixture("generic.json")] }).pipe(Effect.provideService(EventLog, lossy))))
    )
    expect(r.reconciliation?.ok).toBe(false)
    expect(r.reconciliation?.differences).toEqual([
      { collection: "users", key: "42", source: `${fixture("generic.json")}#$.users[0]`, problem: "content differs" },
      { collection: "chats", key: "42", source: `${fixture("generic.json")}#$.chats[1]`, problem: "missing from the log" }
    ])
    expect(r.reconciliation?.collections.find((c) => c.collection === "users")).toMatchObject({ inFiles: 3, matched: 2, different: 1 })
  })

  it("refuses a bot that does not exist, and one that is running elsewhere", async () => {
    const { run, log } = await setup()
    const missing = await Effect.runPromise(Effect.either(importLegacy({ botId: "nobody", files: [fixture("generic.json")] }).pipe(Effect.provideService(EventLog, log))))
    expect(Either.isLeft(missing) && missing.left.message).toMatch(/bot nobody has no events: register it first/)
    await Effect.runPromise(log.acquireLease("legacy-bot", "node-7", 60_000))
    const busy = await run([fixture("generic.json")])
    expect(Either.isLeft(busy) && busy.left.message).toMatch(/running on node node-7: stop it/)
  })
})
