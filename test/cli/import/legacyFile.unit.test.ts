import { createHash } from "node:crypto"
import { describe, expect, it } from "vitest"
import { canonicalJson, jsonPath } from "../../../src/cli/import/json.pure.js"
import { parseLegacyFile } from "../../../src/cli/import/legacyFile.pure.js"
import { sessionKind } from "../../../src/cli/import/sessionLocal.pure.js"

const hash = (s: string) => createHash("sha256").update(s).digest("hex")
const parse = (json: unknown) => parseLegacyFile("f.json", typeof json === "string" ? json : JSON.stringify(json), hash)
const problems = (json: unknown) => {
  const r = parse(json)
  if (r.ok) throw new Error("expected the file to be refused")
  return r.problems.map((p) => `${p.path}: ${p.reason}`)
}

describe("legacy file parsing", () => {
  it("reads telegraf-session-local sessions verbatim, keyed by session id, with the bot's own collections", () => {
    const r = parse({
      sessions: [
        { id: "-100123:42", data: { a: 1, __scenes: { current: "menu", state: {} } } },
        { id: "42:42", data: {} }
      ],
      todos: [{ t: "x" }, { t: "y" }],
      counters: { starts: 1 },
      version: 3,
      archived: []
    })
    if (!r.ok) throw new Error(JSON.stringify(r.problems))
    expect(r.parsed.format).toBe("telegraf-session-local")
    expect(r.parsed.records.map((x) => `${x.collection}/${x.key}@${x.source}`)).toEqual([
      "sessions/-100123:42@f.json#$.sessions[0].data",
      "sessions/42:42@f.json#$.sessions[1].data",
      "data.todos/0@f.json#$.todos[0]",
      "data.todos/1@f.json#$.todos[1]",
      "data.counters/starts@f.json#$.counters.starts",
      "data.version/$@f.json#$.version",
      "data.archived/$@f.json#$.archived"
    ])
    expect(r.parsed.records[0]!.record).toEqual({ a: 1, __scenes: { current: "menu", state: {} } })
    expect(r.parsed.notes).toMatchObject({ sessions: 2, "sessions.chat": 1, "sessions.userOrInline": 1, "sessions.inScene": 1 })
  })

  it("classifies session keys: chat first, inline as user:user, callback by chat_instance", () => {
    expect(sessionKind("-1001234567890:42")).toBe("chat")
    expect(sessionKind("42:42")).toBe("userOrInline")
    expect(sessionKind("-8243528495438451211:42")).toBe("callback")
    expect(sessionKind("whatever")).toBe("custom")
  })

  it("validates the generic layout and keys users, chats, messages and settings", () => {
    const r = parse({
      users: [{ id: 1, first_name: "A", extra: [1] }],
      chats: [{ id: -5, type: "group" }],
      messages: [{ chat_id: -5, message_id: 9, date: "2024-01-02T03:04:05Z" }],
      settings: { lang: "en" }
    })
    if (!r.ok) throw new Error(JSON.stringify(r.problems))
    expect(r.parsed.format).toBe("generic")
    expect(r.parsed.records.map((x) => `${x.collection}/${x.key}`)).toEqual(["users/1", "chats/-5", "messages/-5:9", "settings/lang"])
  })

  it("refuses broken JSON with line and column", () => {
    expect(problems('{\n  "sessions": [\n    { "id": "1:2" ]\n}')).toEqual([expect.stringMatching(/^\$: not valid JSON at line 3, column \d+/)])
  })

  it("refuses an empty file, saying it is empty", () => {
    expect(problems("")).toEqual([expect.stringContaining("the file is empty (0 bytes)")])
  })

  it("refuses every bad record of the generic layout with its JSON path", () => {
    expect(
      problems({ users: [{ id: "42" }, { id: 7, first_name: 5 }], chats: [{ id: 1, type: "forum" }], messages: [{ chat_id: 1, message_id: 1 }] })
    ).toEqual([
      '$.users[0].id: expected an integer Telegram user id, got the string "42"',
      "$.users[1].first_name: expected a string, got number 5",
      '$.chats[0].type: expected one of "private", "group", "supergroup", "channel", got the string "forum"',
      "$.messages[0].date: required field is missing: expected unix seconds (integer) or an ISO-8601 time"
    ])
  })

  it("refuses duplicate ids, pointing at both", () => {
    expect(problems({ sessions: [{ id: "1:2", data: {} }, { id: "1:2", data: { a: 1 } }] })).toEqual([
      '$.sessions[1].id: duplicate session id "1:2", first at $.sessions[0].id'
    ])
    expect(problems({ messages: [{ chat_id: 1, message_id: 1, date: 0 }, { chat_id: 1, message_id: 1, date: 1 }] })).toEqual([
      "$.messages[1]: duplicate message (chat_id:message_id) 1:1, first at $.messages[0]"
    ])
  })

  it("refuses numbers JSON cannot keep exactly", () => {
    expect(problems('{"sessions":[{"id":"1:1","data":{"n":12345678901234567890}}]}')).toEqual([
      expect.stringMatching(/^\$\.sessions\[0\]\.data\.n: the number .* cannot be kept exactly/)
    ])
  })

  it("refuses an unknown layout, naming the unexpected key", () => {
    expect(problems({ userz: [] })).toEqual([expect.stringMatching(/^\$\.userz: unknown top-level key/)])
    expect(problems([1, 2])).toEqual([expect.stringContaining("expected a JSON object")])
  })

  it("makes checksums independent of key order and JSON paths readable", () => {
    expect(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }] })).toBe('{"a":[{"c":2,"d":1}],"b":1}')
    expect(jsonPath(["sessions", 3, "data", "first name"])).toBe('$.sessions[3].data["first name"]')
  })
})
