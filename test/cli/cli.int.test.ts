import { spawn } from "node:child_process"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeBotDecider } from "../../src/actors/decider/decide.js"
import { echoHandler } from "../../src/actors/decider/updateHandler.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import type { DomainEvent } from "../../src/events/schema/catalogue.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import { createTestDatabase } from "../support/db.js"
import { appendNewBot } from "../support/events.js"
import { createTestPrefix } from "../support/redis.js"
import { captureCli } from "./support.js"

/*
 * The botfleet command end to end in production mode: real Redis (the log) and Postgres (migrate),
 * output captured, exit codes checked.
 */

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/legacy/${name}`, import.meta.url))
const token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"

let env: Record<string, string>
let log: EventLogService
let dir: string
let cleanup: () => Promise<void>

const cli = (...argv: Array<string>) => captureCli(env, argv)

const register = (botId: string) =>
  appendNewBot(log, botId, [
    { occurredAt: "2025-01-01T00:00:00.000Z", correlationId: "c1", actor: "owner:o", data: { _tag: "BotRegistered", ownerId: "o", name: "shop", kind: "builtin", mode: "sandbox", tokenCiphertext: "v1:abc" } },
    { occurredAt: "2025-01-02T00:00:00.000Z", correlationId: "c2", actor: "owner:o", data: { _tag: "BotConfigChanged", patch: { greeting: "hi" } } },
    { occurredAt: "2025-01-03T00:00:00.000Z", correlationId: "c3", actor: "system", data: { _tag: "ReplySent", chatId: -100, messageId: 5, text: `never print ${token}`, at: "2025-01-03T00:00:00.000Z" } }
  ])

beforeAll(async () => {
  const db = await createTestDatabase("cli")
  const redis = createTestPrefix("cli")
  dir = await mkdtemp(join(tmpdir(), "bf-cli-"))
  env = {
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    REDIS_PREFIX: redis.prefix,
    BOTFLEET_SECRET_KEY: Buffer.alloc(32, 1).toString("base64"),
    DATA_DIR: dir,
    LOG_LEVEL: "warning"
  }
  log = await Effect.runPromise(makeRedisEventLog({ url: redis.url, prefix: redis.prefix }))
  await register("shop")
  cleanup = async () => {
    await Effect.runPromise(log.close)
    await redis.cleanup()
    await db.drop()
    await rm(dir, { recursive: true, force: true })
  }
})
afterAll(async () => {
  await cleanup()
})

describe("botfleet CLI", () => {
  it("prints help and exits 0; an unknown command or option is a usage error (exit 2)", async () => {
    const help = await cli("--help")
    expect(help.code).toBe(0)
    expect(help.out).toContain("import [options] <bot> <files...>")
    expect((await cli("frobnicate")).code).toBe(2)
    expect((await cli("inspect", "shop", "--bogus")).code).toBe(2)
    // nested subcommands too: commander alone would exit 1 from them
    expect((await cli("dlq", "list", "--bogus")).code).toBe(2)
    const bad = await cli("inspect", "shop", "--at", "yesterday-ish")
    expect(bad.code).toBe(2)
    expect(bad.err).toContain("--at \"yesterday-ish\" is neither a version")
  })

  it("refuses a bad configuration naming the variable (exit 1)", async () => {
    const saved = env
    env = { ...env, PARTITIONS: "many" }
    const r = await cli("config")
    env = saved
    expect(r.code).toBe(1)
    expect(r.err).toContain('PARTITIONS: expects an integer from 1 to 1024, got "many"')
  })

  it("applies migrations once", async () => {
    const first = await cli("migrate", "--json")
    expect(first.code).toBe(0)
    expect(JSON.parse(first.out).applied.length).toBeGreaterThan(0)
    const second = await cli("migrate")
    expect(second).toMatchObject({ code: 0, out: "the database is up to date: no migration to apply" })
  })

  it("rebuilds a projection from the archive and compares it with the live one", async () => {
    const r = await cli("rebuild", "bots", "--compare-only", "--json")
    expect(r.err).toBe("")
    expect(r.code).toBe(0)
    expect(JSON.parse(r.out)).toMatchObject({ projection: "bots", identical: true, swapped: false })
    const unknown = await cli("rebuild", "nope")
    expect(unknown.code).toBe(2)
    expect(unknown.err).toContain('no projection named "nope" to rebuild: choose one of bots, users')
    // the archive is what rebuilds read: it is not offered as a projection to rebuild
    const archive = await cli("rebuild", "archive")
    expect(archive.code).toBe(2)
    expect(archive.err).toContain("choose one of bots, users, messages, daily_stats, audit\n")
  })

  it("imports legacy files with a reconciliation report, and imports nothing the second time", async () => {
    const dry = await cli("import", "shop", fixture("sessions.json"), fixture("generic.json"), "--dry-run", "--json")
    expect(dry.code).toBe(0)
    expect(JSON.parse(dry.out).plan.totals).toMatchObject({ inFiles: 24, new: 24 })
    expect(await Effect.runPromise(log.streamVersion("shop"))).toBe(3)

    const first = await cli("import", "shop", fixture("sessions.json"), fixture("generic.json"))
    expect(first.code).toBe(0)
    expect(first.out).toContain("appended 24 events to bot shop (versions 4..27)")
    expect(first.out).toContain("reconciled: all 24 records are in the log with the same checksum")

    const second = await cli("import", "shop", fixture("sessions.json"), fixture("generic.json"), "--json")
    const report = JSON.parse(second.out)
    expect(second.code).toBe(0)
    expect(report.appended).toBeUndefined()
    expect(report.plan.totals).toMatchObject({ new: 0, changed: 0, unchanged: 24 })
    expect(report.reconciliation.ok).toBe(true)
    expect(await Effect.runPromise(log.streamVersion("shop"))).toBe(27)
  })

  it("refuses malformed files with file, path and reason, writing nothing (exit 1)", async () => {
    const r = await cli("import", "shop", fixture("generic.json"), fixture("bad-generic.json"))
    expect(r.code).toBe(1)
    expect(r.err).toContain(`${fixture("bad-generic.json")}: $.users[0].id: expected an integer Telegram user id, got the string "42"`)
    expect(await Effect.runPromise(log.streamVersion("shop"))).toBe(27)
  })

  it("inspects the state at the end, at a version and at a time", async () => {
    const now = JSON.parse((await cli("inspect", "shop")).out)
    expect(now).toMatchObject({ botId: "shop", version: 27, state: { status: "registered", name: "shop", config: { greeting: "hi" } } })
    expect(now.eventCounts.LegacyRecordImported).toBe(24)
    const v1 = JSON.parse((await cli("inspect", "shop", "--at", "1")).out)
    expect(v1).toMatchObject({ version: 1, state: { config: {} } })
    const t = JSON.parse((await cli("inspect", "shop", "--at", "2025-01-02T12:00:00Z")).out)
    expect(t.version).toBe(2)
    const none = await cli("inspect", "shop", "--at", "99")
    expect(none.code).toBe(1)
    expect(none.err).toContain("its stream runs from version 1 to 27")
  })

  it("tails events readably with filters, never showing a token", async () => {
    const r = await cli("tail", "shop", "--from", "1", "--no-follow", "--type", "ReplySent,BotRegistered")
    expect(r.code).toBe(0)
    const lines = r.out.split("\n")
    expect(lines).toHaveLength(2)
    // the time shown is when the log recorded the event (today), not the event's own time (2025)
    expect(lines[0]).toMatch(/^v1 {2}\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z {2}BotRegistered +ownerId="o" name="shop".* tokenCiphertext=\[redacted\]/)
    expect(lines[0]).not.toContain("2025-01-01T00:00:00.000Z")
    expect(lines[1]).toMatch(/^v3 .*ReplySent .*chatId=-100/)
    const byChat = await cli("tail", "shop", "--from", "1", "--no-follow", "--chat", "-100", "--json")
    expect(byChat.out.split("\n").map((l) => JSON.parse(l).version)).toEqual([3])
    for (const out of [r.out, byChat.out]) expect(out).not.toContain("AAHdqTcv")
  })

  it("exports a stream to ndjson and imports it under a new bot id, identical", async () => {
    const file = join(dir, "shop.ndjson")
    expect((await cli("events", "shop", "--export", file)).code).toBe(0)
    const lines = (await readFile(file, "utf8")).trim().split("\n")
    expect(lines).toHaveLength(27)
    const imported = await cli("events", "shop-copy", "--import", file, "--json")
    expect(imported.code).toBe(0)
    expect(JSON.parse(imported.out).imported).toBe(27)
    const a = JSON.parse((await cli("inspect", "shop")).out)
    const b = JSON.parse((await cli("inspect", "shop-copy")).out)
    expect(b.state).toEqual(a.state)
    const again = await cli("events", "shop-copy", "--import", file)
    expect(again.code).toBe(1)
    expect(again.err).toContain("bot shop-copy already has 27 events: import into a new bot id")
    // an export whose registration names an owner id outside the safe alphabet is refused whole
    const forged = join(dir, "forged.ndjson")
    await writeFile(forged, lines.map((l, i) => (i === 0 ? l.replace('"ownerId":"o"', '"ownerId":"o,other"') : l)).join("\n") + "\n")
    const refused = await cli("events", "shop-forged", "--import", forged)
    expect(refused.code).toBe(1)
    expect(refused.err).toContain('owner id "o,other" refused')
    expect(await Effect.runPromise(log.streamVersion("shop-forged"))).toBe(0)
  })

  it("replays a recorded conversation: identical with the same code (exit 0), a changed reply diverges at its version (exit 1)", async () => {
    const decider = makeBotDecider(() => echoHandler)
    let state = decider.initialState
    let version = 0
    const lease = (await Effect.runPromise(log.acquireLease("echo", "test", 10_000)))!
    const append = async (events: ReadonlyArray<DomainEvent>, at: string, correlationId: string, actor: string) => {
      const r = await Effect.runPromise(log.append({ botId: "echo", expectedVersion: version, fence: lease.fence, events: events.map((data) => ({ data, occurredAt: at, correlationId, actor })) }))
      version = r.version
      state = events.reduce(decider.evolve, state)
    }
    await append(await decider.decide({ _tag: "Register", ownerId: "o", name: "echo", kind: "echo", mode: "sandbox", at: "2025-01-01T00:00:00.000Z" }, state), "2025-01-01T00:00:00.000Z", "reg", "owner:o")
    for (const [n, text] of ["hello", "ciao"].entries()) {
      const at = `2025-01-01T00:0${n + 1}:00.000Z`
      const update = { update_id: 7 + n, message: { message_id: n + 1, text, chat: { id: 5, type: "private" }, from: { id: 5, first_name: "A" } } }
      await append(await decider.decide({ _tag: "HandleUpdate", inboxId: `${n + 1}-0`, update, at }, state), at, `u${n}`, "user:5")
    }
    await Effect.runPromise(log.releaseLease(lease))
    const kinds = (name: string) => fileURLToPath(new URL(`./replay/${name}`, import.meta.url))

    const same = await cli("replay", "echo", "--kinds", kinds("echoKinds.ts"))
    expect(same.err).toBe("")
    expect(same).toMatchObject({ code: 0, out: expect.stringContaining("identical: the current code makes exactly the recorded decisions") })
    const changed = await cli("replay", "echo", "--kinds", kinds("shoutingKinds.ts"), "--json")
    expect(changed.code).toBe(1)
    const report = JSON.parse(changed.out)
    expect(report.divergences[0]).toMatchObject({ version: 4, inputVersion: 2, kind: "events", diff: ['$.text: "hello" → "HELLO"'] })
    expect(changed.err).toContain("replay diverged at version 4")
  })

  it("never says fine without looking: an unknown bot, an empty or reversed range are errors, not empty successes", async () => {
    const replayNobody = await cli("replay", "nosuchbot")
    expect(replayNobody).toMatchObject({ code: 1, out: "" })
    expect(replayNobody.err).toContain("bot nosuchbot has no events: check the bot id (botfleet bots list)")
    const reversed = await cli("replay", "shop", "--from", "30", "--to", "20")
    expect(reversed.code).toBe(2)
    expect(reversed.err).toContain("--from 30 is after --to 20")
    const beyond = await cli("replay", "shop", "--to", "999")
    expect(beyond.code).toBe(1)
    expect(beyond.err).toContain("its stream runs from version 1 to 27")
    const tailNobody = await cli("tail", "nosuchbot", "--no-follow")
    expect(tailNobody).toMatchObject({ code: 1, out: "" })
    expect(tailNobody.err).toContain("bot nosuchbot has no events")
    expect((await cli("tail", "shop", "--from", "99", "--no-follow")).code).toBe(1)
    expect(await cli("tail", "shop", "--from", "28", "--no-follow")).toMatchObject({ code: 0, out: "" })
  })

  it("tail filters the whole history (the last 10 matching events), in version order, each with its recorded time", async () => {
    // 40 events whose own times run backwards; chat -7 only in versions 2..5, UserSeen only at 3
    await appendNewBot(log, "chatty", [
      { occurredAt: "2025-02-01T00:00:00.000Z", correlationId: "r", actor: "owner:o", data: { _tag: "BotRegistered", ownerId: "o", name: "chatty", kind: "builtin", mode: "sandbox" } },
      ...Array.from({ length: 39 }, (_, i) => ({
        occurredAt: new Date(Date.parse("2025-02-01T00:00:00.000Z") - (i + 1) * 60_000).toISOString(),
        correlationId: `c${i}`,
        actor: "system",
        data: (i === 1
          ? { _tag: "UserSeen", userId: 7, firstName: "Ann", at: "2025-01-01T00:00:00.000Z" }
          : { _tag: "ReplySent", chatId: i < 4 ? -7 : -8, messageId: i + 1, text: `reply ${i + 2}`, at: "2025-01-01T00:00:00.000Z" }) as DomainEvent
      }))
    ])
    const versions = (out: string) => out.split("\n").filter(Boolean).map((l) => Number(/^v(\d+)/.exec(l)![1]))
    const last10 = await cli("tail", "chatty", "--no-follow")
    expect(versions(last10.out)).toEqual(Array.from({ length: 10 }, (_, i) => 31 + i))
    const byChat = await cli("tail", "chatty", "--no-follow", "--chat", "-7")
    expect(versions(byChat.out)).toEqual([2, 4, 5])
    const byType = await cli("tail", "chatty", "--no-follow", "--type", "UserSeen,BotRegistered", "--json")
    expect(byType.out.split("\n").map((l) => JSON.parse(l).version)).toEqual([1, 3])
    const fromOn = await cli("tail", "chatty", "--no-follow", "--from", "3", "--chat", "-8")
    expect(versions(fromOn.out)).toEqual(Array.from({ length: 35 }, (_, i) => 6 + i))
    // recorded times never go backwards with the version, although the events' own times do
    const times = (await cli("tail", "chatty", "--no-follow", "--from", "1")).out.split("\n").map((l) => Date.parse(l.split(/\s+/)[1]!))
    expect(times).toHaveLength(40)
    expect(times.every((t, i) => i === 0 || t >= times[i - 1]!)).toBe(true)
    expect(times[0]).toBeGreaterThan(Date.parse("2026-01-01T00:00:00Z"))
  })

  it("prints the version of package.json", async () => {
    const pkg = JSON.parse(await readFile(fileURLToPath(new URL("../../package.json", import.meta.url)), "utf8")) as { version: string }
    expect(await cli("--version")).toMatchObject({ code: 0, out: pkg.version })
  })

  it("ends quietly when its reader closes the pipe early (botfleet ... | head), as Unix tools do", async () => {
    const bin = fileURLToPath(new URL("../../bin/botfleet.js", import.meta.url))
    const { code, err } = await new Promise<{ code: number | null; err: string }>((resolve) => {
      const child = spawn(process.execPath, [bin, "tail", "chatty", "--from", "1", "--no-follow"], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })
      // the reader is gone before the command writes its first line: every write fails with EPIPE
      child.stdout.destroy()
      let err = ""
      child.stderr.on("data", (d: Buffer) => (err += d.toString()))
      child.on("close", (code) => resolve({ code, err }))
    })
    expect(err).toBe("")
    expect(code).toBe(0)
  }, 60_000)

  it("lists dead letters (none here)", async () => {
    expect(await cli("dlq", "list")).toMatchObject({ code: 0, out: "no dead-letter entries" })
    expect(JSON.parse((await cli("dlq", "list", "--json")).out)).toEqual([])
  })
})
