import type { CallExecutor } from "../../../src/actors/actor.js"
import { makeBotDecider } from "../../../src/actors/decider/decide.js"
import { fold } from "../../../src/actors/decider/state.js"
import type { BotState } from "../../../src/actors/decider/state.js"
import type { DomainEvent } from "../../../src/events/schema/catalogue.js"
import { makeBotApi } from "../../../src/telegram/botApi.js"
import { BotModuleRegistry } from "../../../src/telegram/bots/registry.js"
import { executeIntent } from "../../../src/telegram/recordedCalls.js"
import { Sender } from "../../../src/telegram/sender.js"
import type { SenderOptions } from "../../../src/telegram/sender.js"

/**
 * The smallest stand-in for the actor runtime the Telegram edge needs in tests: the real decider
 * and bot modules, events kept in an array, intents executed by the real sender against the
 * sandbox. One update at a time, like the actor.
 */
export const makeMiniActor = (args: {
  readonly botId: string
  readonly token: string
  readonly apiRoot: string
  readonly kind?: string
  readonly config?: Record<string, unknown>
  readonly registry?: BotModuleRegistry
  readonly sender?: Sender
  readonly senderOptions?: SenderOptions
  readonly events?: ReadonlyArray<DomainEvent>
  /** Executes an intent instead of sending it to the sandbox (handoffs). */
  readonly executeCall?: CallExecutor
}) => {
  const registry = args.registry ?? new BotModuleRegistry()
  const decider = makeBotDecider(registry.handlerFor)
  const sender = args.sender ?? new Sender(args.senderOptions)
  const api = makeBotApi(args.token, { apiRoot: args.apiRoot })
  const events: DomainEvent[] = args.events
    ? [...args.events]
    : [
        { _tag: "BotRegistered", ownerId: "owner-1", name: args.botId, kind: args.kind ?? "builtin", mode: "polling", config: args.config ?? {} },
        { _tag: "BotStarted", nodeId: "node-1", fence: 1 }
      ]
  let state: BotState = fold(events)
  let inbox = 0
  let chain: Promise<unknown> = Promise.resolve()
  const append = (es: ReadonlyArray<DomainEvent>) => {
    events.push(...es)
    state = fold(es, state)
  }
  /** Handles one update fully, like the actor: decide; a call's intent is appended, sent, its outcome appended; decide again. */
  const handleNow = async (update: unknown) => {
    const input = { _tag: "HandleUpdate" as const, inboxId: `0-${++inbox}`, update, at: new Date().toISOString() }
    for (;;) {
      const decided = await decider.decide(input, state)
      append(decided)
      const last = decided[decided.length - 1]
      if (last?._tag !== "BotApiCallIntended") return
      const outcome = args.executeCall
        ? await args.executeCall(args.botId, state, last)
        : await executeIntent(last, { botKey: args.botId, sender, call: api.call, now: () => new Date().toISOString() })
      // like the actor: a block records the newest inbox entry, so later messages lift it
      append(outcome.map((e) => (e._tag === "UserBlockedBot" ? { ...e, afterEntry: `0-${inbox}` } : e)))
    }
  }
  return {
    events,
    get state() {
      return state
    },
    append,
    /** Updates are handled one after another, in the order given. */
    handle: (update: unknown) => {
      const run = chain.then(() => handleNow(update))
      chain = run.catch(() => undefined)
      return run
    },
    /** Decides one step of an update WITHOUT executing its intent: what a crash right after the append leaves. */
    decideOnly: async (update: unknown) => {
      const decided = await decider.decide({ _tag: "HandleUpdate", inboxId: `0-${++inbox}`, update, at: new Date().toISOString() }, state)
      append(decided)
      return decided
    },
    /** Handles an update again (the same update, as after a restart): recorded calls answer from the events. */
    resume: (update: unknown) => handleNow(update),
    decider
  }
}
