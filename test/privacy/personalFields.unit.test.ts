import fc from "fast-check"
import { describe, expect, it } from "vitest"
import type { DomainEvent } from "../../src/events/schema/catalogue.js"
import { makeKeyCache } from "../../src/privacy/keyCache.js"
import { containsErased, hasClearPersonal, legacySubject, mapPersonal, mapSealed, sealedUsers, subjectOf } from "../../src/privacy/personalFields.pure.js"
import { ERASED, formatSealed, parseSealed } from "../../src/privacy/sealedValue.pure.js"
import type { KeyState, UserKeys } from "../../src/privacy/userKeys.js"
import { textUpdate } from "../support/events.js"

/** A stand-in seal: reversible, named by user, so a round trip is checked without crypto. */
const fakeSeal = (userId: number) => (s: string) => formatSealed(userId, Buffer.from(s).toString("base64url"))
const fakeOpen = (_u: number, s: string) => Buffer.from(parseSealed(s)!.body, "base64url").toString()

const at = "2026-12-01T00:00:00.000Z"

const legacy = (collection: string, key: string, record: unknown): DomainEvent => ({
  _tag: "LegacyRecordImported", importId: "i", collection, key, record, source: "f.json#$", checksum: "c", at
})

const personalEvents = (userId: number, text: string): ReadonlyArray<DomainEvent> => [
  { _tag: "UserSeen", userId, firstName: text, lastName: `${text} Jr`, username: "zq", languageCode: "en", at },
  { _tag: "MessageReceived", chatId: userId, chatType: "private", userId, messageId: 1, text, at },
  { _tag: "ReplySent", chatId: userId, messageId: 2, text: `you said ${text}`, at },
  { _tag: "UpdateReceived", inboxId: "1-0", updateId: 1, update: textUpdate(1, userId, text), receivedAt: at },
  { _tag: "BotApiCallIntended", callId: "1:0", method: "sendMessage", params: { chat_id: userId, text } },
  { _tag: "BotApiCallSucceeded", callId: "1:0", result: { message_id: 2, chat: { id: userId, type: "private", first_name: "Zed" }, text } },
  { _tag: "AiReplied", chatId: userId, userId, updateId: 1, model: "m", day: "2026-12-01", promptTokens: 1, completionTokens: 1, user: text, assistant: text, at },
  { _tag: "ConversationSummarized", chatId: userId, summary: text, dropped: 2 },
  { _tag: "SessionChanged", key: `${userId}:${userId}`, patch: { note: text, count: 3 } },
  { _tag: "PersonalityAdapted", userId, language: text, formality: "formal", at },
  legacy("users", String(userId), { id: userId, first_name: text, language_code: "en", is_bot: false }),
  legacy("data.users", "0", { id: userId, username: text }),
  // telegraf-session-local keys a session chat first; every string of it is the user's
  legacy("sessions", `-100:${userId}`, { step: text, cart: [text], n: 1 }),
  legacy("sessions", `${userId}:-100`, { step: text }),
  legacy("chats", String(userId), { id: userId, type: "private", first_name: text }),
  legacy("messages", `-100:1`, { chat_id: -100, message_id: 1, from_id: userId, text }),
  legacy("messages", `${userId}:1`, { chat_id: userId, message_id: 1, caption: text })
]

describe("personal fields of events", () => {
  it("seals every personal field with its user's key, keeps ids and everything else, and opens back to the same event", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 40 }), fc.string({ minLength: 1 }), (userId, text) => {
        for (const e of personalEvents(userId, text)) {
          expect(subjectOf(e)).toBe(userId)
          const sealed = mapPersonal(e, fakeSeal(userId))
          expect(JSON.stringify(sealed)).toContain(`sealed:v1:${userId}:`)
          expect(sealedUsers(sealed)).toEqual(new Set([userId]))
          expect(hasClearPersonal(e, userId)).toBe(true)
          expect(hasClearPersonal(sealed, userId)).toBe(false)
          // sealing twice changes nothing: a re-append of a read event is not sealed again
          expect(mapPersonal(sealed, fakeSeal(userId))).toEqual(sealed)
          expect(mapSealed(sealed, fakeOpen)).toEqual(e)
          const erased = mapSealed(sealed, () => ERASED)
          expect(containsErased(erased)).toBe(true)
          expect(JSON.stringify(erased)).not.toContain(`sealed:v1:`)
        }
      })
    )
  })

  it("leaves events of no one user alone: group chats, the bot's own getMe, control-plane events", () => {
    const group: DomainEvent = { _tag: "ReplySent", chatId: -100123, messageId: 2, text: "hello group", at }
    const getMe: DomainEvent = { _tag: "BotApiCallSucceeded", callId: "0:0", result: { id: 1, is_bot: true, first_name: "Bot", username: "a_bot" } }
    const registered: DomainEvent = { _tag: "BotRegistered", ownerId: "o", name: "n", kind: "builtin", mode: "sandbox" }
    for (const e of [group, getMe, registered]) {
      expect(subjectOf(e)).toBeNull()
      expect(hasClearPersonal(e, 1)).toBe(false)
    }
    // a message without text has nothing to seal; a value already [erased] stays so
    const noText: DomainEvent = { _tag: "MessageReceived", chatId: 5, chatType: "private", userId: 5, messageId: 1, at }
    expect(mapPersonal(noText, () => "x")).toBe(noText)
    const erased: DomainEvent = { _tag: "ReplySent", chatId: 5, messageId: 2, text: ERASED, at }
    expect(mapPersonal(erased, () => "x")).toEqual(erased)
  })

  it("takes no user for imported records that name none: groups, settings, a bot's own numbered things, custom session keys", () => {
    const none = [
      legacy("chats", "-100", { id: -100, type: "supergroup", title: "Café" }),
      legacy("settings", "welcome", "Welcome, {name}!"),
      legacy("data.todos", "0", { id: 1, text: "buy milk" }),
      legacy("sessions", "custom-key", { name: "Zoë" }),
      legacy("users", "x", { id: "42", first_name: "Zoë" }),
      legacy("messages", "-100:1", { chat_id: -100, message_id: 1, text: "hi all" })
    ]
    for (const e of none) {
      expect(subjectOf(e)).toBeNull()
      expect(hasClearPersonal(e, 42)).toBe(false)
    }
    // a users record keyed by its user, whatever its `id` holds
    expect(legacySubject("users", "42", { first_name: "Zoë" })).toBe(42)
    // personal keys only outside sessions: the rest of a record stays as the file held it
    const sealed = mapPersonal(legacy("users", "42", { id: 42, first_name: "Zoë", language_code: "sv", tags: ["vip"] }), fakeSeal(42))
    expect(sealed).toMatchObject({ record: { id: 42, language_code: "sv", tags: ["vip"] } })
  })

  it("reads malformed sealed values as not sealed", () => {
    expect(parseSealed("sealed:v1:nouser")).toBeNull()
    expect(parseSealed("sealed:v1:abc:def")).toBeNull()
    expect(parseSealed("plain")).toBeNull()
    expect(mapSealed({ a: ["sealed:v1:x"] }, () => "never")).toEqual({ a: ["sealed:v1:x"] })
  })
})

describe("the key cache", () => {
  const store = () => {
    const calls: Array<string> = []
    const states = new Map<string, KeyState>()
    const keys: UserKeys = {
      seal: () => Promise.reject(new Error("not used")),
      open: () => Promise.reject(new Error("not used")),
      forget: () => Promise.reject(new Error("not used")),
      keyState: async (botId, userId, create) => {
        calls.push(`${botId}:${userId}:${create}`)
        const id = `${botId}:${userId}`
        if (!states.has(id) && create) states.set(id, { _tag: "Key", key: Buffer.alloc(32, userId) })
        return states.get(id) ?? { _tag: "None" }
      },
      keyStates: async (botId, userIds, create) => {
        calls.push(`${botId}:[${userIds.join(",")}]:${create}`)
        return new Map(
          userIds.map((u) => {
            const id = `${botId}:${u}`
            if (!states.has(id) && create) states.set(id, { _tag: "Key", key: Buffer.alloc(32, u) })
            return [u, states.get(id) ?? { _tag: "None" }] as const
          })
        )
      }
    }
    return { keys, calls, states }
  }

  it("answers from memory within its TTL, asks the store again after it, and is bounded in size", async () => {
    let now = 0
    const s = store()
    const cache = makeKeyCache(s.keys, { max: 2, ttlMs: 1000, listen: false, now: () => now })
    await cache.keyState("b", 1, true)
    await cache.keyState("b", 1, false)
    expect(s.calls).toEqual(["b:1:true"])
    now = 1000
    // a key destroyed elsewhere and never announced: seen once the TTL has passed
    s.states.set("b:1", { _tag: "Forgotten" })
    expect((await cache.keyState("b", 1, false))._tag).toBe("Forgotten")
    await cache.keyState("b", 2, true)
    await cache.keyState("b", 3, true)
    expect(cache.size()).toBe(2)
    // a user with no key is not remembered: a writer elsewhere may make one any moment
    await cache.keyState("b", 9, false)
    await cache.keyState("b", 9, false)
    expect(s.calls.filter((c) => c === "b:9:false")).toHaveLength(2)
    cache.close()
  })

  it("looks many users up at once: the cached ones from memory, the rest in one batch of the store", async () => {
    const s = store()
    const cache = makeKeyCache(s.keys, { listen: false })
    await cache.keyState("b", 1, true)
    s.states.set("b:3", { _tag: "Forgotten" })
    const states = await cache.keyStates("b", [1, 2, 3, 2, 4], true)
    expect([...states.keys()]).toEqual([1, 2, 3, 4])
    expect(states.get(3)!._tag).toBe("Forgotten")
    expect(s.calls).toEqual(["b:1:true", "b:[2,3,4]:true"])
    // all cached now, a lone miss takes the single lookup
    await cache.keyStates("b", [1, 2, 3, 4], false)
    expect((await cache.keyStates("b", [4, 9], false)).get(9)!._tag).toBe("None")
    expect(s.calls.slice(2)).toEqual(["b:9:false"])
    cache.close()
  })

  it("drops a key when a forget is announced on the process's channel", async () => {
    const s = store()
    const cache = makeKeyCache(s.keys, { ttlMs: 60_000 })
    await cache.keyState("b", 1, true)
    s.states.set("b:1", { _tag: "Forgotten" })
    const { announceForget } = await import("../../src/privacy/keyCache.js")
    announceForget("b", 1)
    await expect.poll(async () => (await cache.keyState("b", 1, false))._tag).toBe("Forgotten")
    cache.close()
  })
})
