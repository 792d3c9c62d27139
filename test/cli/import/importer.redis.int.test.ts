import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Either } from "effect"
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { importLegacy } from "../../../src/cli/import/importer.js"
import type { ImportOptions } from "../../../src/cli/import/importer.js"
import { readWholeStream } from "../../../src/cli/streamReader.js"
import { EventLog } from "../../../src/events/eventLog.js"
import type { EventLogService } from "../../../src/events/eventLog.js"
import { redisKeys } from "../../../src/events/partition.js"
import { makeRedisEventLog } from "../../../src/events/redisEventLog.js"
import { appendNewBot, legacyBotRegistered } from "../../support/events.js"
import { createTestPrefix } from "../../support/redis.js"

/*
 * The import on the production log (Redis): the read-back that reconciliation relies on comes
 * from what Redis holds, page by page, so a record changed in Redis after it was written, or
 * written differently from what was planned, is reported, never assumed.
 */

const t = createTestPrefix("import")
let log: EventLogService
let raw: Redis
let dir: string
let file: string

// control characters, quotes, slashes and non-BMP text survive the JSON page read of the Redis log
const sessions = Array.from({ length: 57 }, (_, i) => ({
  id: `${-1000 - (i % 5)}:${i}`,
  data: { i, text: `сообщение ${i} 🐱 "q" \\ / \u0001\u007f\u2028`, tags: [i % 3, null, {}], nested: { b: [], a: i % 2 === 0 } }
}))

beforeAll(async () => {
  log = await Effect.runPromise(makeRedisEventLog({ url: t.url, prefix: t.prefix }))
  raw = new Redis(t.url)
  dir = await mkdtemp(join(tmpdir(), "bf-import-redis-"))
  file = join(dir, "sessions.json")
  await writeFile(file, JSON.stringify({ sessions, settings: { welcome: "hi" } }))
})
afterAll(async () => {
  await Effect.runPromise(log.close)
  raw.disconnect()
  await t.cleanup()
  await rm(dir, { recursive: true, force: true })
})

const register = (botId: string) => appendNewBot(log, botId, [legacyBotRegistered])

const runImport = (botId: string, through: EventLogService, extra: Partial<ImportOptions> = {}) =>
  Effect.runPromise(Effect.either(importLegacy({ botId, files: [file], ...extra }).pipe(Effect.provideService(EventLog, through))))

/** Rewrites one stored entry of the bot's stream in place (same id), as a bad actor or a bug would. */
const tamper = async (botId: string, version: number, change: (data: Record<string, unknown>) => void) => {
  const key = redisKeys(t.prefix, log.partitionOf(botId)).stream(botId)
  const entries = await raw.xrange(key, "-", "+")
  await raw.del(key)
  for (const [id, fields] of entries) {
    if (id === `${version}-0`) {
      const i = fields.indexOf("data") + 1
      const data = JSON.parse(fields[i]!) as Record<string, unknown>
      change(data)
      fields[i] = JSON.stringify(data)
    }
    await raw.xadd(key, id, ...fields)
  }
}

describe("legacy import into the Redis log", () => {
  it("writes in several appends, reads every page back and reconciles every record", async () => {
    await register("imp-ok")
    const verified: Array<number> = []
    const r = Either.getOrThrow(
      await runImport("imp-ok", log, { maxEventsPerAppend: 20, pageSize: 7, onProgress: (phase, done) => phase === "verify" && verified.push(done) })
    )
    expect(r.appended).toEqual({ fromVersion: 2, toVersion: 59, events: 58 })
    expect(r.reconciliation).toMatchObject({ ok: true, differenceCount: 0 })
    expect(r.reconciliation?.collections).toEqual([
      { collection: "data.settings", inFiles: 1, inLog: 1, matched: 1, missing: 0, different: 0 },
      { collection: "sessions", inFiles: 57, inLog: 57, matched: 57, missing: 0, different: 0 }
    ])
    expect(Math.max(...verified)).toBe(58)

    const stored = (await Effect.runPromise(readWholeStream(log, "imp-ok"))).slice(1)
    expect(stored.map((e) => e.version)).toEqual(Array.from({ length: 58 }, (_, i) => i + 2))
    const first = stored.find((e) => e.data._tag === "LegacyRecordImported" && e.data.key === "-1000:0")
    expect(first?.data).toMatchObject({ record: sessions[0]!.data })
  })

  it("reports a record changed in Redis after the import, on the next run", async () => {
    await register("imp-tampered")
    Either.getOrThrow(await runImport("imp-tampered", log))
    // version 5 holds session 3; its text is changed, the recorded checksum left as it was
    await tamper("imp-tampered", 5, (data) => {
      ;(data["record"] as Record<string, unknown>)["text"] = "changed behind the import's back"
    })
    const again = Either.getOrThrow(await runImport("imp-tampered", log))
    expect(again.appended).toBeUndefined()
    expect(again.reconciliation?.ok).toBe(false)
    expect(again.reconciliation?.differences).toEqual([
      { collection: "sessions", key: "-1003:3", source: `${file}#$.sessions[3].data`, problem: "content differs" }
    ])
  })

  it("compares what landed in the log, not what it meant to write", async () => {
    await register("imp-miswritten")
    // an append path that changes one record and the recorded checksum of another on the way in
    const miswriting: EventLogService = {
      ...log,
      append: (req) =>
        log.append({
          ...req,
          events: req.events.map((e) => {
            if (e.data._tag !== "LegacyRecordImported") return e
            if (e.data.key === "-1001:1") return { ...e, data: { ...e.data, record: { ...(e.data.record as object), i: 1000 } } }
            if (e.data.key === "-1002:2") return { ...e, data: { ...e.data, checksum: "0".repeat(64) } }
            return e
          })
        })
    }
    const r = Either.getOrThrow(await runImport("imp-miswritten", miswriting, { maxEventsPerAppend: 25 }))
    expect(r.appended?.events).toBe(58)
    expect(r.reconciliation).toMatchObject({ ok: false, differenceCount: 2 })
    expect(r.reconciliation?.differences.map((d) => [d.key, d.problem])).toEqual([
      ["-1001:1", "content differs"],
      ["-1002:2", "checksum recorded wrongly"]
    ])
    expect(r.reconciliation?.collections.find((c) => c.collection === "sessions")).toMatchObject({ inFiles: 57, inLog: 57, matched: 55, different: 2 })
  })
})
