import { containsErased } from "../../privacy/personalFields.pure.js"
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
  /**
   * Inputs of forgotten users (their update reads `[erased]`, docs/privacy.md): folded as
   * recorded, not decided again, since the current code would be deciding on `[erased]` where the
   * recorded decision saw the user's text. Counted, never a divergence.
   */
  readonly erasedInputs: number
  readonly identical: boolean
  readonly divergences: ReadonlyArray<Divergence>
}

/**
 * The update each inbox entry handled: its UpdateReceived, found by the entry's correlation id
 * (`inbox:<entry id>`). A handler that calls the Bot API is decided in steps (see decide.ts), and
 * an actor decides the entries of a batch together, so an entry's steps are spread over the
 * stream, interleaved with other entries' steps and with call outcomes; its UpdateReceived comes
 * with its last step. Entries that failed (UpdateFailed) are not replayed.
 */
const updatesByEntry = (events: ReadonlyArray<RecordedEvent>) => {
  const byCorrelation = new Map<string, Array<{ readonly at: number; readonly update: EventOf<"UpdateReceived"> }>>()
  events.forEach((e, at) => {
    if (e.data._tag !== "UpdateReceived") return
    const list = byCorrelation.get(e.correlationId) ?? []
    list.push({ at, update: e.data })
    byCorrelation.set(e.correlationId, list)
  })
  /** The update the step at index `i` belongs to: the first UpdateReceived of its correlation id at or after it. */
  return (i: number): EventOf<"UpdateReceived"> | undefined => byCorrelation.get(events[i]!.correlationId)?.find((u) => u.at >= i)?.update
}

/** A call's outcome as the actor records it (by "system", as it came back): an input, never a decision. */
const isFact = (e: RecordedEvent) =>
  e.actor === "system" &&
  (e.data._tag === "BotApiCallSucceeded" || e.data._tag === "BotApiCallFailed" || e.data._tag === "BotApiCallOutcomeUnknown" || e.data._tag === "ReplySent" || e.data._tag === "UserBlockedBot")

/** The end (exclusive) of the decision step starting at `start`: its entry's events up to and including an intent. */
const stepEnd = (events: ReadonlyArray<RecordedEvent>, start: number): number => {
  const id = events[start]!.correlationId
  let end = start
  while (end < events.length && events[end]!.correlationId === id && !isFact(events[end]!)) {
    end++
    if (events[end - 1]!.data._tag === "BotApiCallIntended") break
  }
  return end
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
 * [from, to] are decided again and compared, every other event is only folded. Each decision step
 * is decided from the state the stream had just before it (every event before it folded, the
 * other entries' steps and call outcomes included), exactly as the actor decided it.
 * Deterministic and side-effect free as long as the handlers are (the UpdateHandler contract).
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
  const updateAt = updatesByEntry(events)
  const replayed = new Set<string>()
  const erased = new Set<string>()
  /** Entries whose decision diverged once: their later steps would only repeat the difference. */
  const diverged = new Set<string>()
  let state = initialState
  let i = 0
  while (i < events.length && divergences.length < maxDivergences) {
    const e = events[i]!
    const update = updateAt(i)
    if (update === undefined || isFact(e) || diverged.has(e.correlationId) || e.version < from || e.version > to) {
      state = evolve(state, e.data)
      i++
      continue
    }
    const end = stepEnd(events, i)
    const recorded = events.slice(i, end).map((r) => r.data)
    if (containsErased(update.update)) {
      erased.add(e.correlationId)
      state = fold(state, recorded)
      i = end
      continue
    }
    replayed.add(e.correlationId)
    let produced: ReadonlyArray<DomainEvent> | undefined
    try {
      produced = await decider.decide({ _tag: "HandleUpdate", inboxId: update.inboxId, update: update.update, at: update.receivedAt }, state)
    } catch (err) {
      divergences.push({
        version: e.version,
        inputVersion: e.version,
        kind: "error",
        summary: `the current code throws on this input: ${err instanceof Error ? err.message : String(err)}`,
        diff: []
      })
      diverged.add(e.correlationId)
    }
    if (produced) {
      const length = Math.max(produced.length, recorded.length)
      let k = 0
      while (k < length && sameJson(recorded[k], produced[k])) k++
      if (k < length) {
        diverged.add(e.correlationId)
        divergences.push({
          version: e.version + k,
          inputVersion: e.version,
          kind: kindOf(recorded[k], produced[k]),
          summary: describeDifference(recorded[k], produced[k], recorded.length, produced.length),
          diff: jsonDiff(recorded[k], produced[k])
        })
        const stateDiff = jsonDiff(encodeState(fold(state, recorded)), encodeState(fold(state, produced)))
        if (stateDiff.length > 0) {
          divergences.push({ version: e.version + k, inputVersion: e.version, kind: "state", summary: "the state after this input differs", diff: stateDiff })
        }
      }
    }
    // the state carried forward is the RECORDED one, so one divergence does not cascade
    state = fold(state, recorded)
    i = end
  }
  return {
    botId,
    from,
    to: Math.min(to, events[events.length - 1]?.version ?? 0),
    eventsRead: events.length,
    inputsReplayed: replayed.size,
    erasedInputs: erased.size,
    identical: divergences.length === 0,
    divergences
  }
}
