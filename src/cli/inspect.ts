import { Data, Effect } from "effect"
import { encodeState } from "../actors/decider/snapshot.js"
import { evolve, initialState } from "../actors/decider/state.js"
import type { JsonObject } from "../actors/decider/mergePatch.js"
import type { InvalidEvent, LogUnavailable } from "../events/errors.js"
import { EventLog } from "../events/eventLog.js"
import type { RecordedEvent } from "../events/schema/envelope.js"
import { UsageError } from "./runtime.js"
import { readStreamRange } from "./streamReader.js"

/** A point in a bot's history: a stream version, or a time (the last event at or before it). */
export type At = { readonly version: number } | { readonly time: string; readonly ms: number }

export const parseAt = (text: string | undefined): Effect.Effect<At | undefined, UsageError> => {
  if (text === undefined) return Effect.succeed(undefined)
  if (/^\d+$/.test(text)) return Effect.succeed({ version: Number(text) })
  const ms = Date.parse(text)
  return Number.isNaN(ms)
    ? Effect.fail(new UsageError({ detail: `--at ${JSON.stringify(text)} is neither a version (a whole number) nor a time (ISO-8601, e.g. 2025-01-31T12:00:00Z)` }))
    : Effect.succeed({ time: text, ms })
}

export class NothingAt extends Data.TaggedError("NothingAt")<{ readonly botId: string; readonly at: string; readonly last: number }> {
  override get message() {
    return this.last === 0
      ? `bot ${this.botId} has no events: check the bot id (botfleet bots list)`
      : `bot ${this.botId} has no state at ${this.at}: its stream runs from version 1 to ${this.last}`
  }
}

export interface Inspection {
  readonly botId: string
  /** The version the state is at (the last event folded). */
  readonly version: number
  readonly occurredAt: string
  /** Events of each type folded, for orientation. */
  readonly eventCounts: Readonly<Record<string, number>>
  readonly state: JsonObject
}

/** Folds events with the bot decider's `evolve` from its initial state (pure). */
export const foldState = (botId: string, events: ReadonlyArray<RecordedEvent>): Inspection => {
  let state = initialState
  const eventCounts: Record<string, number> = {}
  for (const e of events) {
    state = evolve(state, e.data)
    eventCounts[e.type] = (eventCounts[e.type] ?? 0) + 1
  }
  const last = events[events.length - 1]
  return { botId, version: last?.version ?? 0, occurredAt: last?.occurredAt ?? "", eventCounts, state: encodeState(state) }
}

/**
 * A bot's state at a version or time, rebuilt from its stream (always from version 1: a snapshot
 * could only be trusted if it matched the fold, and the fold is the definition).
 */
export const inspectBot = (botId: string, at: At | undefined): Effect.Effect<Inspection, NothingAt | LogUnavailable | InvalidEvent, EventLog> =>
  Effect.gen(function* () {
    const log = yield* EventLog
    const last = yield* log.streamVersion(botId)
    const label = at === undefined ? "the end" : "version" in at ? `version ${at.version}` : at.time
    if (last === 0 || (at && "version" in at && (at.version < 1 || at.version > last))) return yield* new NothingAt({ botId, at: label, last })
    const to = at && "version" in at ? at.version : last
    let events = yield* readStreamRange(log, botId, { to })
    if (at && "ms" in at) {
      const cut = events.findIndex((e) => Date.parse(e.occurredAt) > at.ms)
      if (cut === 0) return yield* new NothingAt({ botId, at: label, last })
      if (cut > 0) events = events.slice(0, cut)
    }
    return foldState(botId, events)
  })
