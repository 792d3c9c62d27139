import { makeBotDecider } from "../../actors/decider/decide.js"
import { encodeState } from "../../actors/decider/snapshot.js"
import { evolve, initialState } from "../../actors/decider/state.js"
import type { BotState } from "../../actors/decider/state.js"
import type { UpdateHandler } from "../../actors/decider/updateHandler.js"
import type { DomainEvent } from "../../events/schema/catalogue.js"
import type { RecordedEvent } from "../../events/schema/envelope.js"
import { jsonDiff, sameJson } from "./diff.pure.js"

/*
 * Replay: the bot's recorded inputs re-run through the CURRENT code, with recorded time (each
 * update's receive time) and no network (handlers only record Bot API intents; results are
 * recorded events, folded like any other), writing nothing. Each decision is compared with what
 * was recorded in the same append; the state carried forward is the RECORDED one, so one
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
 * The events of the recorded append that starts at `start`. An append is one decision; its events
 * share correlation id, time and actor (the actor writes them so), and a new input starts a new one.
 */
const appendGroup = (events: ReadonlyArray<RecordedEvent>, start: number): ReadonlyArray<RecordedEvent> => {
  const head = events[start]!
  let end = start + 1
  while (
    end < events.length &&
    events[end]!.correlationId === head.correlationId &&
    events[end]!.occurredAt === head.occurredAt &&
    events[end]!.actor === head.actor &&
    events[end]!.type !== "UpdateReceived"
  ) end++
  return events.slice(start, end)
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
    if (e.data._tag !== "UpdateReceived" || e.version < from || e.version > to) {
      state = evolve(state, e.data)
      i++
      continue
    }
    const recorded = appendGroup(events, i).map((r) => r.data)
    inputs++
    let produced: ReadonlyArray<DomainEvent> | undefined
    try {
      produced = await decider.decide({ _tag: "HandleUpdate", inboxId: e.data.inboxId, update: e.data.update, at: e.data.receivedAt }, state)
    } catch (err) {
      divergences.push({
        version: e.version,
        inputVersion: e.version,
        kind: "error",
        summary: `the current code throws on this input: ${err instanceof Error ? err.message : String(err)}`,
        diff: []
      })
    }
    if (produced) {
      const length = Math.max(produced.length, recorded.length)
      let k = 0
      while (k < length && sameJson(recorded[k], produced[k])) k++
      if (k < length) {
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
    state = fold(state, recorded)
    i += recorded.length
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
