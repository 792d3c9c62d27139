import { Data } from "effect"
import type { DomainEvent } from "../../events/schema/catalogue.js"
import type { BotInput, InputOf } from "./input.js"
import { absurd, evolve, initialState, isRecentUpdate } from "./state.js"
import type { BotState } from "./state.js"
import { updateIdOf } from "./updateHandler.js"
import type { TelegramUpdate, UpdateHandler } from "./updateHandler.js"

export type MaybePromise<A> = A | PromiseLike<A>

/** A decider (emmett style): pure decide, pure evolve, an initial state. */
export interface Decider<I, S, E> {
  readonly decide: (input: I, state: S) => MaybePromise<ReadonlyArray<E>>
  readonly evolve: (state: S, event: E) => S
  readonly initialState: S
}

/** An input that makes no sense in the bot's state; nothing is recorded. */
export class InputRejected extends Data.TaggedError("InputRejected")<{
  readonly input: BotInput["_tag"]
  readonly reason: string
}> {
  override get message() {
    return `${this.input} rejected: ${this.reason}`
  }
}

const isPlainObject = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v)

const handleUpdate = (
  handlerFor: (state: BotState) => UpdateHandler,
  input: InputOf<"HandleUpdate">,
  state: BotState
): MaybePromise<ReadonlyArray<DomainEvent>> => {
  const updateId = updateIdOf(input.update)
  if (updateId === null) {
    return [{ _tag: "UpdateFailed", inboxId: input.inboxId, updateId: -1, reason: "the entry has no numeric update_id" }]
  }
  if (isRecentUpdate(state, updateId, input.at)) {
    return [{ _tag: "UpdateDuplicateDropped", inboxId: input.inboxId, updateId }]
  }
  if (state.status === "removed") {
    return [{ _tag: "UpdateFailed", inboxId: input.inboxId, updateId, reason: "the bot is removed" }]
  }
  const received: DomainEvent = { _tag: "UpdateReceived", inboxId: input.inboxId, updateId, update: input.update, receivedAt: input.at }
  const caused = handlerFor(state).handle({
    state,
    update: input.update as TelegramUpdate,
    updateId,
    inboxId: input.inboxId,
    at: input.at
  })
  // stay synchronous when the handler is: most updates never touch a promise
  return isThenable(caused) ? Promise.resolve(caused).then((es) => [received, ...es]) : [received, ...caused]
}

const isThenable = <A>(v: MaybePromise<A>): v is PromiseLike<A> => typeof (v as { then?: unknown })?.then === "function"

/**
 * The bot decider. `handlerFor` picks the update handler of the bot's kind (the extension point);
 * everything else (lifecycle, config, dedupe, the inbox cursor) is decided here for every kind.
 * Throws `InputRejected` for an input its state refuses.
 */
export const makeBotDecider = (handlerFor: (state: BotState) => UpdateHandler): Decider<BotInput, BotState, DomainEvent> => ({
  initialState,
  evolve,
  decide: (input, state) => {
    switch (input._tag) {
      case "HandleUpdate":
        return handleUpdate(handlerFor, input, state)
      case "FailUpdate":
        return [{ _tag: "UpdateFailed", inboxId: input.inboxId, updateId: updateIdOf(input.update) ?? -1, reason: input.reason }]
      case "Register":
        if (state.status !== "unregistered") throw new InputRejected({ input: input._tag, reason: "the bot is already registered" })
        return [
          {
            _tag: "BotRegistered",
            ownerId: input.ownerId,
            name: input.name,
            kind: input.kind,
            mode: input.mode,
            tokenCiphertext: input.tokenCiphertext,
            config: input.config
          }
        ]
      case "ChangeConfig":
        if (!isPlainObject(input.patch)) throw new InputRejected({ input: input._tag, reason: "a config patch must be a JSON object" })
        if (state.status === "removed") throw new InputRejected({ input: input._tag, reason: "the bot is removed" })
        return [{ _tag: "BotConfigChanged", patch: input.patch }]
      case "Start":
        if (state.status === "removed") throw new InputRejected({ input: input._tag, reason: "the bot is removed" })
        if (state.status === "running" && state.node?.nodeId === input.nodeId && state.node.fence === input.fence) return []
        return [{ _tag: "BotStarted", nodeId: input.nodeId, fence: input.fence }]
      case "Stop":
        return state.status === "running" ? [{ _tag: "BotStopped", nodeId: input.nodeId, reason: input.reason }] : []
      case "RecordCrash":
        return [{ _tag: "BotCrashed", nodeId: input.nodeId, reason: input.reason, attempt: input.attempt }]
      case "GiveUp":
        return state.status === "failed" ? [] : [{ _tag: "BotGaveUp", lastError: input.lastError, attempts: input.attempts }]
      case "Remove":
        return state.status === "removed" ? [] : [{ _tag: "BotRemoved", reason: input.reason }]
      default:
        return absurd(input)
    }
  }
})
