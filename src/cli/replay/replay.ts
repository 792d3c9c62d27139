import { makeBotDecider } from "../../actors/decider/decide.js"
import { encodeState } from "../../actors/decider/snapshot.js"
import { evolve, initialState } from "../../actors/decider/state.js"
import type { BotState } from "../../actors/decider/state.js"
import type { UpdateHandler } from "../../actors/decider/updateHandler.js"
import type { DomainEvent, EventOf } from "../../events/schema/catalogue.js"
import type { RecordedEvent } from "../../events/schema/envelope.js"
import { jsonDiff, sameJson } from "./diff.pure.js"

/*
 * Replay: the bot's recorded inputs re-run through the CURRENT code, with recorded time (each
 * update's receive time) and no network (a handler's Bot API call gets its recorded result back:
 * results are recorded events, folded like any other), writing nothing. Each decision step is
 * compared with what was recorded; the state carried forward is the RECORDED one, so one
 * divergence does not cascade into every later input.
 */

export type DivergenceKind = "events" | "api-call" | "state" | "error"

export interface Divergence {
  /** The first version where the current code and the record disagree. */
  readonly version: number
  /** Version of the recorded input (UpdateReceived) whose decision diverged. */
  readonly inputVersion: number
  readonly kind: DivergenceKind
  readonly summary: string
  /** `path: recorded → current` lines. */
  readonly diff: ReadonlyArray<string>
}

export interface ReplayReport {
  readonly botId: string
  readonly from: number
  readonly to: number
  readonly eventsRead: number
  readonly inputsReplayed: number
  readonly identical: boolean
  readonly divergences: ReadonlyArray<Divergence>
}

/**
 * The events the actor recorded for one inbox entry, contiguous in the stream: they share the
 * correlation id `inbox:<entry id>`. A handler that calls the Bot API is decided in steps (see
 * decide.ts), so a segment reads: [decided step ending in an intent] [the call's outcome, recorded
 * as it happened] [next decided step] ... A crash in the middle splits an entry into two segments.
 */
const segmentAt = (events: ReadonlyArray<RecordedEvent>, start: number): ReadonlyArray<RecordedEvent> => {
  const id = events[start]!.correlationId
  let end = start + 1
  while (end < events.length && events[end]!.correlationId === id) end++
  return events.slice(start, end)
}

/**
 * The update a segment handled: its UpdateReceived, in the segment or, when a crash cut the
 * segment after an intent, in a later segment of the same entry. Null for any other segment.
 */
const updateOf = (events: ReadonlyArray<RecordedEvent>, start: number, segment: ReadonlyArray<RecordedEvent>): EventOf<"UpdateReceived"> | null => {
  for (const e of segment) if (e.data._tag === "UpdateReceived") return e.data
  const last = segment[segment.length - 1]!
  if (last.data._tag !== "BotApiCallIntended") return null
  for (let i = start + segment.length; i < events.length; i++) {
    const e = events[i]!
    if (e.correlationId !== last.correlationId) continue
    if (e.data._tag === "UpdateReceived") return e.data
    if (e.data._tag === "UpdateFailed") return null
  }
  return null
}

/** A call's outcome as the actor records it (by "system", as it came back): an input, never a decision. */
const isFact = (e: RecordedEvent) =>
  e.actor === "system" &&
  (e.data._tag === "BotApiCallSucceeded" || e.data._tag === "BotApiCallFailed" || e.data._tag === "BotApiCallOutcomeUnknown" || e.data._tag === "ReplySent" || e.data._tag === "UserBlockedBot")

const isOutcomeOf = (e: RecordedEvent, callId: string) => {
  const d = e.data
  if (d._tag === "BotApiCallSucceeded" || d._tag === "BotApiCallFailed" || d._tag === "BotApiCallOutcomeUnknown") return d.callId === callId
  return e.actor === "system" && (d._tag === "ReplySent" || d._tag === "UserBlockedBot")
}

const kindOf = (a: DomainEvent | undefined, b: DomainEvent | undefined): DivergenceKind =>
  a?._tag === "BotApiCallIntended" || b?._tag === "BotApiCallIntended" ? "api-call" : "events"

const fold = (state: BotState, events: ReadonlyArray<DomainEvent>) => events.reduce(evolve, state)

const describeDifference = (was: DomainEvent | undefined, now: DomainEvent | undefined, recorded: number, produced: number) =>
  was === undefined
    ? `the current code also emits ${now!._tag} (recorded ${recorded} events, now ${produced})`
    : now === undefined
      ? `the current code no longer emits ${was._tag} (recorded ${recorded} events, now ${produced})`
      : now._tag === was._tag
        ? `the current code emits a different ${was._tag}`
        : `recorded ${was._tag}, the current code emits ${now._tag}`

/**
 * Replays `events` (a bot's stream from version 1) with `handlerFor`: inputs with versions in
 * [from, to] are decided again and compared, every other event is only folded. Deterministic and
 * side-effect free as long as the handlers are (the UpdateHandler contract).
 */
export const replayEvents = async (
  botId: string,
  events: ReadonlyArray<RecordedEvent>,
  handlerFor: (state: BotState) => UpdateHandler,
  range: { readonly from?: number; readonly to?: number } = {},
  maxDivergences = 50
): Promise<ReplayReport> => {
  const decider = makeBotDecider(handlerFor)
  const from = range.from ?? 1
  const to = range.to ?? Number.MAX_SAFE_INTEGER
  const divergences: Array<Divergence> = []
  let state = initialState
  let inputs = 0
  let i = 0
  while (i < events.length && divergences.length < maxDivergences) {
    const e = events[i]!
    const segment = segmentAt(events, i)
    const update = e.version >= from && e.version <= to ? updateOf(events, i, segment) : null
    if (update === null) {
      state = fold(state, segment.map((r) => r.data))
      i += segment.length
      continue
    }
    inputs++
    let pos = 0
    // each step: decide again from the recorded state, compare with the recorded step, then fold
    // the call's recorded outcome (an input from Telegram, not a decision) and go on
    while (pos < segment.length) {
      // outcomes the actor recorded on their own (after another writer's append) are inputs too
      while (pos < segment.length && isFact(segment[pos]!)) state = evolve(state, segment[pos++]!.data)
      if (pos === segment.length) break
      let stepEnd = pos
      while (stepEnd < segment.length && segment[stepEnd]!.data._tag !== "BotApiCallIntended") stepEnd++
      stepEnd = Math.min(stepEnd + 1, segment.length)
      const recorded = segment.slice(pos, stepEnd).map((r) => r.data)
      const at = segment[pos]!.version
      let produced: ReadonlyArray<DomainEvent> | undefined
      try {
        produced = await decider.decide({ _tag: "HandleUpdate", inboxId: update.inboxId, update: update.update, at: update.receivedAt }, state)
      } catch (err) {
        divergences.push({
          version: at,
          inputVersion: e.version,
          kind: "error",
          summary: `the current code throws on this input: ${err instanceof Error ? err.message : String(err)}`,
          diff: []
        })
      }
      let diverged = produced === undefined
      if (produced) {
        const length = Math.max(produced.length, recorded.length)
        let k = 0
        while (k < length && sameJson(recorded[k], produced[k])) k++
        if (k < length) {
          diverged = true
          divergences.push({
            version: at + k,
            inputVersion: e.version,
            kind: kindOf(recorded[k], produced[k]),
            summary: describeDifference(recorded[k], produced[k], recorded.length, produced.length),
            diff: jsonDiff(recorded[k], produced[k])
          })
          const stateDiff = jsonDiff(encodeState(fold(state, recorded)), encodeState(fold(state, produced)))
          if (stateDiff.length > 0) {
            divergences.push({ version: at + k, inputVersion: e.version, kind: "state", summary: "the state after this input differs", diff: stateDiff })
          }
        }
      }
      state = fold(state, recorded)
      pos = stepEnd
      const last = recorded[recorded.length - 1]
      if (last?._tag === "BotApiCallIntended") {
        while (pos < segment.length && isOutcomeOf(segment[pos]!, last.callId)) state = evolve(state, segment[pos++]!.data)
      }
      if (diverged) {
        // later steps would only repeat the same difference: fold the rest as recorded
        state = fold(state, segment.slice(pos).map((r) => r.data))
        break
      }
    }
    i += segment.length
  }
  return {
    botId,
    from,
    to: Math.min(to, events[events.length - 1]?.version ?? 0),
    eventsRead: events.length,
    inputsReplayed: inputs,
    identical: divergences.length === 0,
    divergences
  }
}
