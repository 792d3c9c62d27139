import { isPlainObject, jsonPath } from "./json.pure.js"
import { recordChecksum } from "./records.pure.js"
import type { Hasher, ImportProblem, LegacyRecord } from "./records.pure.js"
import { describe } from "./sessionLocal.pure.js"

/*
 * The generic legacy layout (schemas/legacy-bot.schema.json, docs/import.md): one JSON object with
 * any of `users`, `chats`, `messages` (arrays) and `settings` (an object), plus an optional
 * `"format": "botfleet-legacy/1"`. Known fields are type-checked; any other field of a record is
 * kept as is. Keys: users and chats by `id`, messages by `<chat_id>:<message_id>`, settings by name.
 */

export const GENERIC_KEYS = ["format", "users", "chats", "messages", "settings"] as const
export const GENERIC_FORMAT = "botfleet-legacy/1"

type Check = (v: unknown) => boolean
const int: Check = (v) => typeof v === "number" && Number.isSafeInteger(v)
const str: Check = (v) => typeof v === "string"
const bool: Check = (v) => typeof v === "boolean"
const iso8601 = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])([T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/
const isoOrUnix: Check = (v) => (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) || (typeof v === "string" && iso8601.test(v))
const chatType: Check = (v) => v === "private" || v === "group" || v === "supergroup" || v === "channel"

export interface FieldSpec {
  readonly check: Check
  readonly expects: string
  readonly required?: boolean
}

const userFields: Record<string, FieldSpec> = {
  id: { check: int, expects: "an integer Telegram user id", required: true },
  first_name: { check: str, expects: "a string" },
  last_name: { check: str, expects: "a string" },
  username: { check: str, expects: "a string" },
  language_code: { check: str, expects: "a string (IETF language tag)" },
  is_bot: { check: bool, expects: "a boolean" }
}
const chatFields: Record<string, FieldSpec> = {
  id: { check: int, expects: "an integer Telegram chat id", required: true },
  type: { check: chatType, expects: 'one of "private", "group", "supergroup", "channel"', required: true },
  title: { check: str, expects: "a string" },
  username: { check: str, expects: "a string" }
}
const messageFields: Record<string, FieldSpec> = {
  chat_id: { check: int, expects: "an integer chat id", required: true },
  message_id: { check: int, expects: "an integer message id", required: true },
  date: { check: isoOrUnix, expects: "unix seconds (integer) or an ISO-8601 time", required: true },
  from_id: { check: int, expects: "an integer user id" },
  text: { check: str, expects: "a string" },
  reply_to_message_id: { check: int, expects: "an integer message id" }
}

/** The known fields of each list and which are required (schemas/legacy-bot.schema.json mirrors them). */
export const genericFields: Readonly<Record<"users" | "chats" | "messages", Readonly<Record<string, FieldSpec>>>> = {
  users: userFields,
  chats: chatFields,
  messages: messageFields
}

export const parseGeneric = (
  file: string,
  json: Record<string, unknown>,
  hash: Hasher,
  problems: Array<ImportProblem>
): { readonly records: ReadonlyArray<LegacyRecord>; readonly notes: Readonly<Record<string, number>> } => {
  const records: Array<LegacyRecord> = []
  const notes: Record<string, number> = {}
  const problem = (path: ReadonlyArray<string | number>, reason: string) => problems.push({ file, path: jsonPath(path), reason })
  const add = (collection: string, key: string, value: unknown, path: ReadonlyArray<string | number>) => {
    records.push({ collection, key, record: value, source: `${file}#${jsonPath(path)}`, checksum: recordChecksum(collection, key, value, hash) })
    notes[collection] = (notes[collection] ?? 0) + 1
  }

  if ("format" in json && json["format"] !== GENERIC_FORMAT) {
    problem(["format"], `expected ${JSON.stringify(GENERIC_FORMAT)} (or no "format" key), got ${describe(json["format"])}`)
  }

  const list = (name: "users" | "chats" | "messages", fields: Record<string, FieldSpec>, keyOf: (r: Record<string, unknown>) => string, keyName: string) => {
    const value = json[name]
    if (value === undefined) return
    if (!Array.isArray(value)) return problem([name], `expected an array of ${name}, got ${describe(value)}`)
    const firstSeen = new Map<string, number>()
    value.forEach((r, i) => {
      if (!isPlainObject(r)) return problem([name, i], `expected an object, got ${describe(r)}`)
      let ok = true
      for (const [field, spec] of Object.entries(fields)) {
        if (!(field in r)) {
          if (spec.required) {
            problem([name, i, field], `required field is missing: expected ${spec.expects}`)
            ok = false
          }
        } else if (!spec.check(r[field])) {
          problem([name, i, field], `expected ${spec.expects}, got ${describe(r[field])}`)
          ok = false
        }
      }
      if (!ok) return
      const key = keyOf(r)
      const first = firstSeen.get(key)
      if (first !== undefined) return problem([name, i], `duplicate ${keyName} ${key}, first at ${jsonPath([name, first])}`)
      firstSeen.set(key, i)
      add(name, key, r, [name, i])
    })
  }
  list("users", userFields, (r) => String(r["id"]), "user id")
  list("chats", chatFields, (r) => String(r["id"]), "chat id")
  list("messages", messageFields, (r) => `${String(r["chat_id"])}:${String(r["message_id"])}`, "message (chat_id:message_id)")

  const settings = json["settings"]
  if (settings !== undefined) {
    if (!isPlainObject(settings)) problem(["settings"], `expected an object of named settings, got ${describe(settings)}`)
    else for (const [k, v] of Object.entries(settings)) add("settings", k, v, ["settings", k])
  }
  return { records, notes }
}
