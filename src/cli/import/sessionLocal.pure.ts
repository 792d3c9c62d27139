import { isPlainObject, jsonPath } from "./json.pure.js"
import { recordChecksum } from "./records.pure.js"
import type { Hasher, ImportProblem, LegacyRecord } from "./records.pure.js"

/*
 * telegraf-session-local files (lowdb): `{"sessions": [{"id": "<chat>:<user>", "data": {...}}], ...}`.
 * Session ids are kept verbatim; their kind is only reported:
 * - `<chatId>:<userId>`: a chat session (chat id first; negative for groups);
 * - `<userId>:<userId>`: an inline query, or a private chat (whose id is the user's);
 * - `<chat_instance>:<userId>`: a callback query without a chat (chat_instance: a 64-bit number);
 * - anything else: a custom getSessionKey, imported as is.
 * Scene and wizard state lives under `data.__scenes` and comes across with the rest of `data`.
 * Every other top-level key is the bot's own data: collection `data.<key>`, one record per array
 * element (key = index) or object property (key = name), an empty or scalar value as one record `$`.
 */

export type SessionKind = "chat" | "userOrInline" | "callback" | "custom"

export const sessionKind = (id: string): SessionKind => {
  const m = /^(-?\d+):(\d+)$/.exec(id)
  if (!m) return "custom"
  const [, left, right] = m
  if (left === right) return "userOrInline"
  return Number.isSafeInteger(Number(left)) ? "chat" : "callback"
}

export interface SessionFileResult {
  readonly records: ReadonlyArray<LegacyRecord>
  readonly notes: Readonly<Record<string, number>>
}

export const parseSessionLocal = (
  file: string,
  json: Record<string, unknown>,
  hash: Hasher,
  problems: Array<ImportProblem>
): SessionFileResult => {
  const records: Array<LegacyRecord> = []
  const notes: Record<string, number> = { sessions: 0, "sessions.chat": 0, "sessions.userOrInline": 0, "sessions.callback": 0, "sessions.custom": 0, "sessions.inScene": 0 }
  const record = (collection: string, key: string, value: unknown, path: ReadonlyArray<string | number>) =>
    records.push({ collection, key, record: value, source: `${file}#${jsonPath(path)}`, checksum: recordChecksum(collection, key, value, hash) })
  const problem = (path: ReadonlyArray<string | number>, reason: string) => problems.push({ file, path: jsonPath(path), reason })

  const sessions = json["sessions"]
  if (!Array.isArray(sessions)) {
    problem(["sessions"], `expected an array of {"id", "data"} sessions, got ${describe(sessions)}`)
  } else {
    const firstSeen = new Map<string, number>()
    sessions.forEach((s, i) => {
      if (!isPlainObject(s)) return problem(["sessions", i], `expected a session object {"id", "data"}, got ${describe(s)}`)
      const id = s["id"]
      if (typeof id !== "string" || id === "") return problem(["sessions", i, "id"], `expected a non-empty string session id such as "-1001234:5678", got ${describe(id)}`)
      const data = s["data"]
      if (!isPlainObject(data)) return problem(["sessions", i, "data"], `expected the session's data object, got ${describe(data)}`)
      const extra = Object.keys(s).filter((k) => k !== "id" && k !== "data")
      if (extra.length > 0) return problem(["sessions", i, extra[0]!], `unexpected key in a session (only "id" and "data" are kept by telegraf-session-local)`)
      const first = firstSeen.get(id)
      if (first !== undefined) return problem(["sessions", i, "id"], `duplicate session id ${JSON.stringify(id)}, first at ${jsonPath(["sessions", first, "id"])}`)
      firstSeen.set(id, i)
      const kind = sessionKind(id)
      notes["sessions"]!++
      notes[`sessions.${kind}`]!++
      const scenes = data["__scenes"]
      if (isPlainObject(scenes) && typeof scenes["current"] === "string") notes["sessions.inScene"]!++
      record("sessions", id, data, ["sessions", i, "data"])
    })
  }

  for (const [name, value] of Object.entries(json)) {
    if (name === "sessions") continue
    const collection = `data.${name}`
    if (Array.isArray(value) && value.length > 0) value.forEach((v, i) => record(collection, String(i), v, [name, i]))
    else if (isPlainObject(value) && Object.keys(value).length > 0) for (const [k, v] of Object.entries(value)) record(collection, k, v, [name, k])
    else record(collection, "$", value, [name])
    notes[collection] = (notes[collection] ?? 0) + 1
  }
  return { records, notes }
}

/** A short description of an unexpected value for error messages (never the whole value). */
export const describe = (v: unknown): string => {
  if (v === undefined) return "nothing"
  if (v === null) return "null"
  if (Array.isArray(v)) return `an array of ${v.length}`
  if (typeof v === "object") return "an object"
  if (typeof v === "string") return v.length > 40 ? `a string "${v.slice(0, 40)}…"` : `the string ${JSON.stringify(v)}`
  return `${typeof v} ${String(v)}`
}
