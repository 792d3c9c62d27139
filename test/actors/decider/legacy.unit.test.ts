import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import fc from "fast-check"
import { Composer } from "telegraf"
import { describe, expect, it } from "vitest"
import { makeBotDecider } from "../../../src/actors/decider/decide.js"
import { Entries, keysOfEvent, readSession, userKey } from "../../../src/actors/decider/entries.js"
import { legacySessionTarget } from "../../../src/actors/decider/legacy.js"
import { encodeState } from "../../../src/actors/decider/snapshot.js"
import { evolve, fold, initialState } from "../../../src/actors/decider/state.js"
import type { BotState } from "../../../src/actors/decider/state.js"
import { userOf } from "../../../src/actors/decider/updateHandler.js"
import { importEvents } from "../../../src/cli/import/plan.pure.js"
import { parseLegacyFile } from "../../../src/cli/import/legacyFile.pure.js"
import type { DomainEvent } from "../../../src/events/schema/catalogue.js"
import { telegrafHandler } from "../../../src/telegram/bots/telegrafHandler.js"
import type { BotContext } from "../../../src/telegram/bots/telegrafHandler.js"

const sha = (t: string) => createHash("sha256").update(t).digest("hex")
const AT = "2026-12-01T10:00:00.000Z"

const importedFrom = (fixture: string): DomainEvent[] => {
  const r = parseLegacyFile(fixture, readFileSync(new URL(`../../fixtures/legacy/${fixture}`, import.meta.url), "utf8"), sha)
  if (!r.ok) throw new Error(JSON.stringify(r.problems))
  return importEvents(r.parsed.records, { runId: "run", occurredAt: AT }).map((e) => e.data as DomainEvent)
}

const registered: DomainEvent = { _tag: "BotRegistered", ownerId: "acme", name: "old", kind: "builtin", mode: "sandbox" }

describe("legacy session keys", () => {
  it("turns telegraf-session-local's chat-first ids round to telegraf's <from>:<chat>, keeps the rest", () => {
    expect(legacySessionTarget("-1001234567890:42")).toEqual({ key: "42:-1001234567890", userId: 42 })
    expect(legacySessionTarget("42:42")).toEqual({ key: "42:42", userId: 42 })
    expect(legacySessionTarget("42:-1001234567890")).toEqual({ key: "42:-1001234567890", userId: 42 })
    expect(legacySessionTarget("77:1001")).toEqual({ key: "1001:77", userId: 1001 })
    // a callback's chat_instance beyond 2^53 is no chat: verbatim, still the user's
    expect(legacySessionTarget("-8243528495438451211:42")).toEqual({ key: "-8243528495438451211:42", userId: 42 })
    expect(legacySessionTarget("custom-key-from-getSessionKey")).toEqual({ key: "custom-key-from-getSessionKey", userId: undefined })
  })
})

describe("folding LegacyRecordImported", () => {
  const sessions = importedFrom("sessions.json")
  const generic = importedFrom("generic.json")
  const state = fold([registered, ...sessions, ...generic])

  it("puts each session where ctx.session reads it, unchanged, __scenes included", () => {
    const file = JSON.parse(readFileSync(new URL("../../fixtures/legacy/sessions.json", import.meta.url), "utf8")) as {
      sessions: Array<{ id: string; data: unknown }>
    }
    expect(readSession(state.entries, "42:-1001234567890")).toEqual(file.sessions[0]!.data)
    expect(readSession(state.entries, "42:42")).toEqual({ lastInlineQuery: "cats", __scenes: {} })
    expect(readSession(state.entries, "custom-key-from-getSessionKey")).toEqual({ x: 1 })
    expect(encodeState(state)["sessions"]).toHaveProperty(["1001:77"], { language: "uk", greeting: "Привіт" })
  })

  it("makes the users known: profiles with name and language, session owners without", () => {
    expect(userOf(state, 42)).toEqual({
      firstName: "Zoë", lastName: "Ångström", username: "zoe", languageCode: "sv", firstSeen: AT, lastSeen: AT, blocked: false
    })
    expect(userOf(state, 1001)).toMatchObject({ firstName: "Олена" })
    // a bot in the users list is not a user the bot talks to
    expect(userOf(state, 5000000000)).toBeUndefined()
    // a user known from a session only: known, name unknown until they write
    const onlySessions = fold([registered, ...sessions])
    expect(userOf(onlySessions, 1001)).toEqual({ firstName: "", firstSeen: AT, lastSeen: AT, blocked: false })
  })

  it("keeps every other record as a read-only legacy entry, nulls included", () => {
    const legacy = encodeState(state)["legacy"] as Record<string, unknown>
    expect(legacy["data.todos:1"]).toEqual({ id: 2, text: "写代码", done: true })
    expect(legacy["data.schemaVersion:$"]).toBe(3)
    expect(legacy["data.archived:$"]).toEqual([])
    expect(legacy["settings:motd"]).toBeNull()
    expect(legacy["users:5000000000"]).toEqual({ id: 5000000000, first_name: "🤖", is_bot: true })
    expect(legacy["messages:-1001234567890:2"]).toMatchObject({ text: "привіт" })
  })

  it("a later import of a record replaces it; a user's name from a profile keeps what the bot learned", () => {
    const seen: DomainEvent = { _tag: "UserSeen", userId: 42, firstName: "Z", at: "2026-01-01T00:00:00.000Z" }
    const s = fold([registered, seen, ...generic])
    expect(userOf(s, 42)).toMatchObject({ firstName: "Zoë", firstSeen: "2026-01-01T00:00:00.000Z" })
  })

  it("keysOfEvent names every entry the fold touches (an actor holding only those folds the same)", () => {
    const all = [registered, ...sessions, ...generic]
    fc.assert(
      fc.property(fc.shuffledSubarray(all.slice(1), { minLength: 1 }), (events) => {
        const whole = fold([registered, ...events])
        // an actor's partial state: only the keys each event names are loaded, from the full fold before it
        let partial: BotState = { ...fold([registered]), entries: Entries.empty(false) }
        let reference: BotState = fold([registered])
        for (const e of events) {
          const keys = keysOfEvent(e)
          partial = { ...partial, entries: partial.entries.withLoaded(keys.map((k) => [k, reference.entries.value(k) ?? null] as const)) }
          partial = evolve(partial, e)
          reference = evolve(reference, e)
        }
        for (const [k, v] of whole.entries.values()) expect(partial.entries.value(k)).toEqual(v)
      }),
      { numRuns: 50 }
    )
  })
})

describe("the telegraf kind reads imported state", () => {
  it("ctx.session is the old session and ctx.legacy the old collections", async () => {
    const state = fold([registered, ...importedFrom("sessions.json"), ...importedFrom("generic.json")])
    const bot = new Composer<BotContext>()
    bot.on("message", (ctx) => {
      ctx.session = { ...ctx.session, seen: [ctx.session?.["counter"], ctx.legacy.todos!.get("1"), ctx.legacy.settings!.get("welcome"), ctx.legacy.nothing!.get("0") ?? "none"] }
    })
    const decider = makeBotDecider(() => telegrafHandler(bot))
    const update = {
      update_id: 1,
      message: { message_id: 5, date: 1, text: "hi", chat: { id: -1001234567890, type: "supergroup" }, from: { id: 42, is_bot: false, first_name: "Zoë", last_name: "Ångström", username: "zoe", language_code: "sv" } }
    }
    const events = await decider.decide({ _tag: "HandleUpdate", inboxId: "1-0", update, at: AT }, state)
    expect(events.find((e) => e._tag === "SessionChanged")).toEqual({
      _tag: "SessionChanged",
      key: "42:-1001234567890",
      patch: { seen: [7, { id: 2, text: "写代码", done: true }, "Welcome, {name}!", "none"] }
    })
    // the known user with the same profile is not seen anew
    expect(events.some((e) => e._tag === "UserSeen")).toBe(false)
    expect(state.entries.isLoaded(userKey(42))).toBe(true)
    expect(initialState.entries.complete).toBe(true)
  })
})
