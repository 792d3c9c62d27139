import { Either, Schema } from "effect"
import type { Json, JsonObject } from "./mergePatch.js"
import { PersistentMap } from "./persistentMap.js"
import type { BotState, KnownUser, OpenCall } from "./state.js"

/**
 * Version of the snapshot layout. Bump it whenever BotState or evolve changes meaning: snapshots
 * of another version are ignored and the state is rebuilt from events, so a schema change never
 * breaks a bot (it only makes its next activation slower).
 */
export const SNAPSHOT_SCHEMA_VERSION = 2

const Optional = Schema.optional(Schema.String)
const StateJson = Schema.Struct({
  status: Schema.Literal("unregistered", "registered", "running", "stopped", "failed", "removed"),
  ownerId: Schema.NullOr(Schema.String),
  name: Schema.NullOr(Schema.String),
  kind: Schema.NullOr(Schema.String),
  mode: Schema.NullOr(Schema.Literal("webhook", "polling", "sandbox")),
  tokenCiphertext: Schema.NullOr(Schema.String),
  config: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  inboxCursor: Schema.NullOr(Schema.String),
  recentUpdates: Schema.Array(Schema.Tuple(Schema.Number, Schema.Number)),
  updatesHandled: Schema.Number,
  updatesFailed: Schema.Number,
  duplicatesDropped: Schema.Number,
  sessions: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  users: Schema.Array(
    Schema.Tuple(
      Schema.Number,
      Schema.Struct({
        firstName: Schema.String,
        lastName: Optional,
        username: Optional,
        languageCode: Optional,
        firstSeen: Schema.String,
        lastSeen: Schema.String,
        blocked: Schema.Boolean,
        blockedAt: Optional
      })
    )
  ),
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

/** A state as JSON-safe data (maps become entry lists). */
export const encodeState = (s: BotState): JsonObject =>
  ({
    ...s,
    // sorted: a hash map's order is not insertion order, and printed states should read the same each time
    recentUpdates: [...s.recentUpdates].sort((a, b) => a[0] - b[0]),
    users: [...s.users].sort((a, b) => a[0] - b[0]),
    pendingCalls: [...s.pendingCalls].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)),
    openCalls: [...s.openCalls].sort((a, b) => a[0] - b[0])
  }) as unknown as JsonObject

// built once: activation decodes a snapshot per bot, and building the parser cost more than parsing
const decodeStateJson = Schema.decodeUnknownEither(StateJson)

/** The state of a snapshot, or null when it is of another schema version or does not decode. */
export const decodeState = (schemaVersion: number, json: unknown): BotState | null => {
  if (schemaVersion !== SNAPSHOT_SCHEMA_VERSION) return null
  const r = decodeStateJson(json)
  if (Either.isLeft(r)) return null
  const s = r.right
  return {
    ...s,
    config: s.config as JsonObject,
    sessions: s.sessions as Record<string, Json>,
    recentUpdates: PersistentMap.from(s.recentUpdates),
    users: PersistentMap.from(s.users as ReadonlyArray<readonly [number, KnownUser]>),
    pendingCalls: PersistentMap.from(s.pendingCalls),
    openCalls: PersistentMap.from(s.openCalls as ReadonlyArray<readonly [number, ReadonlyArray<OpenCall>]>)
  }
}
