import { Either } from "effect"
import { InvalidEvent } from "./errors.js"
import type { AppendRequest } from "./eventLog.js"
import { parseOwnerId } from "./ownerId.js"
import { BOT_ID_PATTERN } from "./partition.js"
import type { EventEnvelope, NewEvent, RecordedEvent } from "./schema/envelope.js"
import { decodePayload, encodePayloadJson, registry } from "./schema/registry.js"

/**
 * Stream fields of one event. Plain, readable names so `redis-cli XRANGE` shows what happened:
 * ids, type and versions as their own fields, the payload as JSON.
 */
export type EventFields = {
  readonly eventId: string
  readonly botId: string
  readonly v: string
  readonly type: string
  readonly schemaVersion: string
  readonly occurredAt: string
  readonly correlationId: string
  readonly causationId: string
  readonly actor: string
  readonly data: string
}

export const FIELD_NAMES = [
  "eventId", "botId", "v", "type", "schemaVersion", "occurredAt", "correlationId", "causationId", "actor", "data"
] as const

/** An event validated and encoded, waiting for its version. */
export interface EncodedEvent {
  readonly eventId: string
  readonly type: string
  readonly schemaVersion: number
  readonly occurredAt: string
  readonly correlationId: string
  readonly causationId: string
  readonly actor: string
  readonly data: string
}

const invalidEvent = (botId: string, e: NewEvent | undefined, reason: InvalidEvent["reason"], detail: string) => {
  const type = (e?.data as { _tag?: unknown } | undefined)?._tag
  return Either.left(new InvalidEvent({ reason, detail, type: typeof type === "string" ? type : undefined, botId }))
}

/**
 * Validates a new event against its schema and encodes it; nothing about it is stored yet.
 * Plain branches, no closures or Either chains: every appended event goes through here (100k of
 * them in one import).
 */
export const encodeNewEvent = (botId: string, e: NewEvent, newId: () => string): Either.Either<EncodedEvent, InvalidEvent> => {
  if (!e || typeof e !== "object") return invalidEvent(botId, e, "BadRequest", "an event must be an object")
  if (typeof e.occurredAt !== "string" || Number.isNaN(Date.parse(e.occurredAt))) {
    return invalidEvent(botId, e, "MissingField", "occurredAt must be an ISO-8601 time")
  }
  if (typeof e.correlationId !== "string" || e.correlationId.length === 0) return invalidEvent(botId, e, "MissingField", "correlationId is required")
  if (typeof e.actor !== "string" || e.actor.length === 0) return invalidEvent(botId, e, "MissingField", "actor is required")
  const p = encodePayloadJson(e.data)
  if (Either.isLeft(p)) return invalidEvent(botId, e, p.left.reason, p.left.detail)
  // the one gate every path that records an owner passes (CLI, imports, restores, the API)
  if (p.right.type === "BotRegistered") {
    const owner = parseOwnerId((e.data as { ownerId?: unknown }).ownerId)
    if (Either.isLeft(owner)) return invalidEvent(botId, e, "SchemaMismatch", owner.left.message)
  }
  return Either.right({
    eventId: e.eventId ?? newId(),
    type: p.right.type,
    schemaVersion: p.right.schemaVersion,
    occurredAt: e.occurredAt,
    correlationId: e.correlationId,
    causationId: e.causationId ?? "",
    actor: e.actor,
    data: p.right.json
  })
}

/**
 * Validates a whole append and encodes its events, before any adapter touches its store: every
 * adapter refuses the same requests with the same typed error, and a refused append writes nothing.
 */
export const encodeAppend = (req: AppendRequest, newId: () => string): Either.Either<ReadonlyArray<EncodedEvent>, InvalidEvent> => {
  if (!req || typeof req.botId !== "string" || !BOT_ID_PATTERN.test(req.botId)) {
    // the id becomes part of key names and URLs: keep it to the safe alphabet
    return Either.left(new InvalidEvent({ reason: "BadRequest", detail: `botId must match ${BOT_ID_PATTERN}` }))
  }
  if (!Array.isArray(req.events) || req.events.length === 0) {
    return Either.left(new InvalidEvent({ reason: "BadRequest", detail: "an append needs at least one event", botId: req.botId }))
  }
  if (!Number.isSafeInteger(req.expectedVersion) || req.expectedVersion < 0 || !Number.isSafeInteger(req.fence)) {
    return Either.left(new InvalidEvent({ reason: "BadRequest", detail: "expectedVersion and fence must be integers", botId: req.botId }))
  }
  const encoded: EncodedEvent[] = []
  for (const e of req.events) {
    const r = encodeNewEvent(req.botId, e, newId)
    if (Either.isLeft(r)) return Either.left(r.left)
    encoded.push(r.right)
  }
  return Either.right(encoded)
}

export const toFields = (botId: string, version: number, e: EncodedEvent): EventFields => ({
  eventId: e.eventId,
  botId,
  v: String(version),
  type: e.type,
  schemaVersion: String(e.schemaVersion),
  occurredAt: e.occurredAt,
  correlationId: e.correlationId,
  causationId: e.causationId,
  actor: e.actor,
  data: e.data
})

/** Flattens fields into the `[k1, v1, k2, v2, ...]` argument list XADD takes. */
export const fieldsToArgs = (f: EventFields): string[] => FIELD_NAMES.flatMap((k) => [k, f[k]])

/** Reads the `[k1, v1, ...]` list Redis returns into a field map. */
export const argsToFields = (args: ReadonlyArray<string>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (let i = 0; i + 1 < args.length; i += 2) out[args[i]!] = args[i + 1]!
  return out
}

/**
 * Decodes stored fields into an envelope, upcasting older payload versions. Plain branches, not
 * Either.map chains: this runs once per event read (a 100-event activation tail, a 100k replay).
 */
export const decodeFields = (raw: Readonly<Record<string, string | undefined>>): Either.Either<EventEnvelope, InvalidEvent> => {
  for (const k of FIELD_NAMES) {
    if (typeof raw[k] !== "string") {
      return Either.left(new InvalidEvent({ reason: "MissingField", detail: `field ${k} is missing`, type: raw["type"], botId: raw["botId"] }))
    }
  }
  const f = raw as unknown as EventFields
  let json: unknown
  try {
    json = JSON.parse(f.data)
  } catch (e) {
    return Either.left(new InvalidEvent({ reason: "MalformedJson", detail: (e as Error).message, type: f.type, botId: f.botId }))
  }
  const version = Number(f.v)
  if (!Number.isSafeInteger(version) || version < 1) {
    return Either.left(new InvalidEvent({ reason: "SchemaMismatch", detail: `v must be a positive integer, got ${f.v}`, type: f.type, botId: f.botId }))
  }
  // json was parsed just above and nobody else holds it: decodePayload may tag it in place
  const decoded = decodePayload(f.type, Number(f.schemaVersion), json, { owned: true })
  if (Either.isLeft(decoded)) {
    return Either.left(new InvalidEvent({ reason: decoded.left.reason, detail: decoded.left.detail, type: f.type, botId: f.botId }))
  }
  const data = decoded.right
  return Either.right({
    eventId: f.eventId,
    botId: f.botId,
    version,
    type: data._tag,
    // data has been upcast: it is now of the current version, whatever was stored
    schemaVersion: registry[data._tag].current,
    occurredAt: f.occurredAt,
    correlationId: f.correlationId,
    causationId: f.causationId === "" ? null : f.causationId,
    actor: f.actor,
    data
  })
}

/**
 * The envelope with its position. Spelled out, not `{ ...e, position, partition }`: V8 copies a
 * spread with extra properties through its slow runtime path (about 5 µs an event, more than the
 * whole decode), and every read of the log goes through here.
 */
export const withPosition = (e: EventEnvelope, position: string, partition: number, recordedAt?: string): RecordedEvent => ({
  eventId: e.eventId,
  botId: e.botId,
  version: e.version,
  type: e.type,
  schemaVersion: e.schemaVersion,
  occurredAt: e.occurredAt,
  correlationId: e.correlationId,
  causationId: e.causationId,
  actor: e.actor,
  data: e.data,
  position,
  partition,
  recordedAt
})
