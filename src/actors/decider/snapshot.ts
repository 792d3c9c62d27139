import { Either, Schema } from "effect"
import { Entries } from "./entries.js"
import type { KnownUser } from "./entries.js"
import type { Json, JsonObject } from "./mergePatch.js"
import { PersistentMap } from "./persistentMap.js"
import type { BotState, OpenCall } from "./state.js"

/**
 * Version of the snapshot layout. Bump it whenever BotState or evolve changes meaning: snapshots
 * of another version are ignored and the state is rebuilt from events, so a schema change never
 * breaks a bot (it only makes its next activation slower). 3: the bot-level part only (users and
 * sessions are keyed entries, stored beside it), and the bounded dedupe window. 4: imported legacy
 * records are folded (sessions, users, legacy entries), where 3 ignored them.
 */
export const SNAPSHOT_SCHEMA_VERSION = 4

const CoreJson = Schema.Struct({
  status: Schema.Literal("unregistered", "registered", "running", "stopped", "failed", "removed"),
  ownerId: Schema.NullOr(Schema.String),
  name: Schema.NullOr(Schema.String),
  kind: Schema.NullOr(Schema.String),
  mode: Schema.NullOr(Schema.Literal("webhook", "polling", "sandbox")),
  tokenCiphertext: Schema.NullOr(Schema.String),
  config: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  inboxCursor: Schema.NullOr(Schema.String),
  seenUpdates: Schema.Array(Schema.Tuple(Schema.Number, Schema.Number, Schema.Number)),
  updatesHandled: Schema.Number,
  updatesFailed: Schema.Number,
  duplicatesDropped: Schema.Number,
  pendingCalls: Schema.Array(Schema.Tuple(Schema.String, Schema.String)),
  openCalls: Schema.Array(
    Schema.Tuple(
      Schema.Number,
      Schema.Array(
        Schema.Struct({
          callId: Schema.String,
          method: Schema.String,
          outcome: Schema.NullOr(
            Schema.Union(
              Schema.TaggedStruct("Succeeded", { result: Schema.Unknown }),
              Schema.TaggedStruct("Failed", { errorCode: Schema.Number, description: Schema.String, retryAfter: Schema.optional(Schema.Number) }),
              Schema.TaggedStruct("Unknown", { reason: Schema.String })
            )
          )
        })
      )
    )
  ),
  node: Schema.NullOr(Schema.Struct({ nodeId: Schema.String, fence: Schema.Number })),
  crashes: Schema.Number,
  lastError: Schema.NullOr(Schema.String)
})

const byString = (a: readonly [string, unknown], b: readonly [string, unknown]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)

/**
 * The bot-level part of a state as JSON (maps become sorted entry lists): what a snapshot stores
 * beside the changed entries. Its size does not depend on how many users the bot knows.
 */
export const encodeCore = (s: BotState): JsonObject => {
  const { entries: _entries, seenUpdates, pendingCalls, openCalls, ...rest } = s
  return {
    ...rest,
    seenUpdates: seenUpdates.runs,
    // sorted: a hash map's order is not insertion order, and printed states should read the same each time
    pendingCalls: [...pendingCalls].sort(byString),
    openCalls: [...openCalls].sort((a, b) => a[0] - b[0])
  } as unknown as JsonObject
}

// built once: activation decodes a snapshot per bot, and building the parser cost more than parsing
const decodeCoreJson = Schema.decodeUnknownEither(CoreJson)

/**
 * The state of a snapshot's bot-level part, with no entry resident (they load on demand), or
 * null when the snapshot is of another schema version or does not decode.
 */
export const decodeCore = (schemaVersion: number, json: unknown): BotState | null => {
  if (schemaVersion !== SNAPSHOT_SCHEMA_VERSION) return null
  const r = decodeCoreJson(json)
  if (Either.isLeft(r)) return null
  const s = r.right
  return {
    ...s,
    config: s.config as JsonObject,
    seenUpdates: { runs: s.seenUpdates },
    entries: Entries.empty(false),
    pendingCalls: PersistentMap.from(s.pendingCalls),
    openCalls: PersistentMap.from(s.openCalls as ReadonlyArray<readonly [number, ReadonlyArray<OpenCall>]>)
  }
}

/**
 * A whole state as JSON, for people and diffs (inspect, replay): the bot-level part plus the
 * entries it holds, as `users` (by id), `sessions` (by key) and imported `legacy` records (by
 * `<collection>:<key>`), sorted.
 */
export const encodeState = (s: BotState): JsonObject => {
  const users: Array<readonly [number, KnownUser]> = []
  const sessions: Array<readonly [string, Json]> = []
  const other: Array<readonly [string, Json]> = []
  const legacy: Array<readonly [string, Json]> = []
  for (const [key, value] of s.entries.values()) {
    if (key.startsWith("u:")) users.push([Number(key.slice(2)), value as unknown as KnownUser])
    else if (key.startsWith("s:")) sessions.push([key.slice(2), value])
    else if (key.startsWith("l:")) legacy.push([key.slice(2), (value as { record?: Json }).record ?? null])
    else other.push([key, value])
  }
  users.sort((a, b) => a[0] - b[0])
  sessions.sort(byString)
  other.sort(byString)
  legacy.sort(byString)
  return {
    ...encodeCore(s),
    users: users as unknown as Json,
    sessions: Object.fromEntries(sessions),
    ...(legacy.length > 0 ? { legacy: Object.fromEntries(legacy) } : {}),
    ...(other.length > 0 ? { entries: Object.fromEntries(other) } : {})
  } as JsonObject
}
