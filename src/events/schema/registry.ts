import { Either, ParseResult, Schema } from "effect"
import * as C from "./catalogue.js"
import type { DomainEvent, EventType } from "./catalogue.js"

/** Turns the JSON of version n into the JSON of version n + 1. Pure, total on valid input. */
export type Upcaster = (old: Record<string, unknown>) => Record<string, unknown>

export interface EventTypeSpec {
  readonly schema: Schema.Schema.AnyNoContext
  /** The version new events are written with. */
  readonly current: number
  /** `upcasters[n]` reads version n and returns version n + 1. */
  readonly upcasters: Readonly<Record<number, Upcaster>>
}

const v1 = (schema: Schema.Schema.AnyNoContext): EventTypeSpec => ({ schema, current: 1, upcasters: {} })

export const registry: { readonly [T in EventType]: EventTypeSpec } = {
  BotRegistered: {
    schema: C.BotRegistered,
    current: 2,
    upcasters: { 1: (old) => ({ ...old, kind: "builtin", mode: old["mode"] ?? "polling" }) }
  },
  BotConfigChanged: v1(C.BotConfigChanged),
  BotTokenRotated: v1(C.BotTokenRotated),
  BotStarted: v1(C.BotStarted),
  BotStopped: v1(C.BotStopped),
  BotCrashed: v1(C.BotCrashed),
  BotGaveUp: v1(C.BotGaveUp),
  BotRemoved: v1(C.BotRemoved),
  UpdateReceived: v1(C.UpdateReceived),
  UpdateDuplicateDropped: v1(C.UpdateDuplicateDropped),
  UpdateFailed: v1(C.UpdateFailed),
  BotApiCallIntended: v1(C.BotApiCallIntended),
  BotApiCallSucceeded: v1(C.BotApiCallSucceeded),
  BotApiCallFailed: v1(C.BotApiCallFailed),
  BotApiCallOutcomeUnknown: v1(C.BotApiCallOutcomeUnknown),
  MessageReceived: v1(C.MessageReceived),
  ReplySent: v1(C.ReplySent),
  UserSeen: {
    schema: C.UserSeen,
    current: 2,
    upcasters: {
      1: (old) => {
        const { name, ...rest } = old
        const [firstName = "", ...others] = String(name ?? "").split(" ")
        return others.length > 0 ? { ...rest, firstName, lastName: others.join(" ") } : { ...rest, firstName }
      }
    }
  },
  UserBlockedBot: v1(C.UserBlockedBot),
  SessionChanged: v1(C.SessionChanged),
  SnapshotTaken: v1(C.SnapshotTaken),
  LegacyRecordImported: v1(C.LegacyRecordImported),
  UserUnblockedBot: v1(C.UserUnblockedBot),
  FleetSettingChanged: v1(C.FleetSettingChanged),
  UserForgotten: v1(C.UserForgotten),
  AiReplied: v1(C.AiReplied),
  ConversationSummarized: v1(C.ConversationSummarized),
  AiFallbackUsed: v1(C.AiFallbackUsed),
  PersonalityAdapted: v1(C.PersonalityAdapted)
}

export const isEventType = (type: string): type is EventType => Object.prototype.hasOwnProperty.call(registry, type)

type Parse = (u: unknown) => Either.Either<unknown, ParseResult.ParseError>

// Built once per type: making a parser per call costs more than the parse itself on the append path.
const encoders = Object.fromEntries(
  Object.entries(registry).map(([t, spec]) => [t, Schema.encodeUnknownEither(spec.schema)])
) as { readonly [T in EventType]: Parse }
const decoders = Object.fromEntries(
  Object.entries(registry).map(([t, spec]) => [t, Schema.decodeUnknownEither(spec.schema)])
) as { readonly [T in EventType]: Parse }

/** Why a payload could not be read or written; mirrors InvalidEventReason without depending on errors.ts. */
export interface PayloadProblem {
  readonly reason: "UnknownType" | "UnknownSchemaVersion" | "SchemaMismatch"
  readonly detail: string
}

/** Encodes a payload for storage: its JSON without `_tag` (the envelope's `type` says it), at the current version. */
export const encodePayload = (
  event: DomainEvent
): Either.Either<{ readonly type: EventType; readonly schemaVersion: number; readonly json: Record<string, unknown> }, PayloadProblem> => {
  const tag: unknown = (event as { _tag?: unknown })?._tag
  if (typeof tag !== "string" || !isEventType(tag)) {
    return Either.left({ reason: "UnknownType", detail: `no event type named ${JSON.stringify(tag)}` })
  }
  const spec = registry[tag]
  return encoders[tag](event).pipe(
    Either.mapLeft((e) => ({ reason: "SchemaMismatch" as const, detail: ParseResult.TreeFormatter.formatErrorSync(e) })),
    Either.map((encoded) => {
      const { _tag, ...json } = encoded as Record<string, unknown>
      return { type: tag, schemaVersion: spec.current, json }
    })
  )
}

// What JSON.stringify writes first for an encoded payload: a TaggedStruct's `_tag` is its first field.
const tagPrefixes = Object.fromEntries(Object.keys(registry).map((t) => [t, `{"_tag":${JSON.stringify(t)}`])) as {
  readonly [T in EventType]: string
}

/**
 * `encodePayload` with the JSON already written: the payload's JSON text without `_tag`, byte for
 * byte what `JSON.stringify(encodePayload(e).json)` gives. The append path: the tag is cut from the
 * text instead of copying every encoded object without it (a rest spread per event).
 */
export const encodePayloadJson = (
  event: DomainEvent
): Either.Either<{ readonly type: EventType; readonly schemaVersion: number; readonly json: string }, PayloadProblem> => {
  const tag: unknown = (event as { _tag?: unknown })?._tag
  if (typeof tag !== "string" || !isEventType(tag)) {
    return Either.left({ reason: "UnknownType", detail: `no event type named ${JSON.stringify(tag)}` })
  }
  const encoded = encoders[tag](event)
  if (Either.isLeft(encoded)) return Either.left({ reason: "SchemaMismatch", detail: ParseResult.TreeFormatter.formatErrorSync(encoded.left) })
  const text = JSON.stringify(encoded.right)
  const prefix = tagPrefixes[tag]
  let json: string
  const next = text.startsWith(prefix) ? text.charCodeAt(prefix.length) : -1
  if (next === 44 /* "," */) json = "{" + text.slice(prefix.length + 1)
  else if (next === 125 /* "}" */ && text.length === prefix.length + 1) json = "{}"
  else {
    // not the shape expected (the tag not first): the general way
    const { _tag, ...rest } = encoded.right as Record<string, unknown>
    json = JSON.stringify(rest)
  }
  return Either.right({ type: tag, schemaVersion: registry[tag].current, json })
}

/**
 * Decodes stored JSON of any known version: upcasts step by step to the current one, then validates.
 * `owned`: the caller just parsed `json` and holds no other reference, so its `_tag` may be set in
 * place instead of copying it (a spread copy of a parsed object cost 3x the schema decode).
 */
export const decodePayload = (
  type: string,
  schemaVersion: number,
  json: unknown,
  options: { readonly owned?: boolean } = {}
): Either.Either<DomainEvent, PayloadProblem> => {
  if (!isEventType(type)) return Either.left({ reason: "UnknownType", detail: `no event type named ${JSON.stringify(type)}` })
  const spec = registry[type]
  if (!Number.isInteger(schemaVersion) || schemaVersion < 1 || schemaVersion > spec.current) {
    return Either.left({
      reason: "UnknownSchemaVersion",
      detail: `${type} has versions 1..${spec.current}, not ${schemaVersion}`
    })
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return Either.left({ reason: "SchemaMismatch", detail: "data must be a JSON object" })
  }
  let payload = json as Record<string, unknown>
  let ours = options.owned === true
  for (let v = schemaVersion; v < spec.current; v++) {
    const up = spec.upcasters[v]
    if (!up) return Either.left({ reason: "UnknownSchemaVersion", detail: `${type} has no upcaster from v${v}` })
    payload = up(payload)
    // an upcaster may return parts of its input, which may still be the caller's
    ours = false
  }
  let tagged: Record<string, unknown>
  if (ours) {
    // a plain data property, like the spread below makes (the schema drops what it does not know)
    tagged = payload
    tagged["_tag"] = type
  } else tagged = { ...payload, _tag: type }
  const decoded = decoders[type](tagged)
  return Either.isRight(decoded)
    ? (decoded as Either.Either<DomainEvent, never>)
    : Either.left({ reason: "SchemaMismatch", detail: ParseResult.TreeFormatter.formatErrorSync(decoded.left) })
}
