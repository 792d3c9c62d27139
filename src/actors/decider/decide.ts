import { Data } from "effect"
import type { DomainEvent } from "../../events/schema/catalogue.js"
import { keysOfEvents, newEntryReads, trackedRead, userKey } from "./entries.js"
import { handoffOf, isIdempotentMethod } from "./handoff.js"
import { botMessageOf } from "./botMessage.js"
import type { KnownUser } from "./entries.js"
import type { BotInput, InputOf } from "./input.js"
import { absurd, evolve, initialState, isRecentUpdate, updateIdOfCall, writtenAfterBlock } from "./state.js"
import type { BotState } from "./state.js"
import { RecordedCallFailed, RecordedCallMismatch, RecordedCallUnknown, chatIdOf, privateWriterOf, updateIdOf, viewOf } from "./updateHandler.js"
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

/**
 * The update cannot be decided yet: it needs state entries the actor has not loaded (an actor
 * holds only the entries its recent updates touched). Nothing was decided; the actor loads the
 * keys and decides again. Never thrown on a fully folded state (replay, inspect).
 */
export class NeedsEntries extends Data.TaggedError("NeedsEntries")<{ readonly keys: ReadonlyArray<string> }> {
  override get message() {
    return `needs state entries ${this.keys.join(", ")}`
  }
}

const isPlainObject = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v)

/** What a call to a user who blocked the bot is refused with, without being sent. */
export const BLOCKED_DESCRIPTION = "Forbidden: bot was blocked by the user"

/** Why an intent without outcome is closed when its update is decided again. */
export const RESUMED_REASON = "the actor stopped between sending the call and recording its result"

const jsonCopy = (v: unknown): unknown => (v === undefined ? null : JSON.parse(JSON.stringify(v)))

/**
 * An update whose handler calls the Bot API is decided in steps. Each step re-runs the handler
 * from the start against the results recorded so far (deterministic, like a workflow replay):
 * calls with a recorded outcome resolve with it, and the first call without one ends the step
 * with that call's `BotApiCallIntended` (the handler is left pending and dropped). The actor
 * appends the intent, sends it, records the outcome, and decides again. The last step, where
 * every call is answered, records `UpdateReceived` and the handler's events.
 */
const runHandler = (
  handlerFor: (state: BotState) => UpdateHandler,
  input: InputOf<"HandleUpdate">,
  updateId: number,
  state0: BotState
): MaybePromise<ReadonlyArray<DomainEvent>> => {
  // intents left without outcome: a crash after sending; the outcome is unknowable, so recorded as
  // unknown and never re-sent. Idempotent deliveries (handoffs) stay open: the handler's call sends them again
  const unknown = unknownOutcomes(state0, updateId, true)
  const state = unknown.reduce(evolve, state0)
  const recorded = state.openCalls.get(updateId) ?? []
  const writer = privateWriterOf(input.update)
  const reads = newEntryReads()
  const userRead = (id: number) => trackedRead(state.entries, reads, userKey(id)) as KnownUser | undefined
  // a blocked user who writes in private after the block has unblocked the bot
  const writerUser = writer !== null ? userRead(writer) : undefined
  const unblocked: ReadonlyArray<DomainEvent> =
    writer !== null && writerUser?.blocked === true && writerUser.blockedAfterEntry !== undefined && writtenAfterBlock(writerUser, input.inboxId, input.at)
      ? [{ _tag: "UserUnblockedBot", userId: writer, at: input.at }]
      : []
  let n = 0
  let intent: DomainEvent | null = null
  let suspend!: (i: DomainEvent) => void
  const suspended = new Promise<DomainEvent>((resolve) => (suspend = resolve))
  const call = (method: string, params: Readonly<Record<string, unknown>> = {}): Promise<unknown> => {
    const callId = `${updateId}:${n++}`
    const rec = recorded.find((c) => c.callId === callId)
    if (rec && rec.method !== method) return Promise.reject(new RecordedCallMismatch({ callId, recorded: rec.method, called: method }))
    if (rec && rec.outcome !== null) {
      const o = rec.outcome
      switch (o._tag) {
        case "Succeeded":
          return Promise.resolve(jsonCopy(o.result))
        case "Failed":
          return Promise.reject(new RecordedCallFailed({ callId, method, errorCode: o.errorCode, description: o.description, retryAfter: o.retryAfter }))
        case "Unknown":
          return Promise.reject(new RecordedCallUnknown({ callId, method, reason: o.reason }))
      }
    }
    // a private chat's id is its user's: a user who blocked the bot is never messaged again. The
    // refusal takes its call number, so the numbering is the same on every run of the handler
    // (including the run after the call that learned of the block)
    const chatId = chatIdOf(params["chat_id"])
    const user = chatId !== null && chatId > 0 ? userRead(chatId) : undefined
    // the user writing now is answered, unless the block was learned after this update arrived
    if (user?.blocked && !(chatId === writer && writtenAfterBlock(user, input.inboxId, input.at))) {
      return Promise.reject(new RecordedCallFailed({ callId, method, errorCode: 403, description: BLOCKED_DESCRIPTION }))
    }
    if (intent === null) {
      intent = { _tag: "BotApiCallIntended", callId, method, params: jsonCopy(params), awaited: true }
      suspend(intent)
    }
    return new Promise<never>(() => undefined)
  }
  const received: DomainEvent = { _tag: "UpdateReceived", inboxId: input.inboxId, updateId, update: input.update, receivedAt: input.at }
  const finish = (caused: ReadonlyArray<DomainEvent>): ReadonlyArray<DomainEvent> => {
    // what bot code saw of a missing entry was a guess: nothing decided with it may stand
    if (reads.missing.size > 0) throw new NeedsEntries({ keys: [...reads.missing] })
    const decided = intent !== null ? [...unknown, intent] : [...unknown, received, ...unblocked, ...caused]
    const unloaded = keysOfEvents(decided).filter((k) => !state.entries.isLoaded(k))
    if (unloaded.length > 0) throw new NeedsEntries({ keys: unloaded })
    return decided
  }
  const caused = handlerFor(state).handle({ state: viewOf(state, reads), update: input.update as TelegramUpdate, updateId, inboxId: input.inboxId, at: input.at, call })
  // stay synchronous when the handler is: most updates never touch a promise
  if (!isThenable(caused)) return finish(caused)
  return Promise.race([Promise.resolve(caused).then(finish), suspended.then(() => finish([]))])
}

const unknownOutcomes = (state: BotState, updateId: number, keepIdempotent = false): DomainEvent[] =>
  (state.openCalls.get(updateId) ?? [])
    .filter((c) => c.outcome === null && !(keepIdempotent && isIdempotentMethod(c.method)))
    .map((c) => ({ _tag: "BotApiCallOutcomeUnknown", callId: c.callId, reason: RESUMED_REASON }))

/**
 * Intents without outcome that no update will decide again (streams written before handlers
 * awaited their calls): closed as unknown when the bot starts, never re-sent.
 */
const abandonedCalls = (state: BotState): DomainEvent[] => {
  const callIds: string[] = []
  state.pendingCalls.forEach((_, callId) => {
    const updateId = updateIdOfCall(callId)
    if (updateId === null || !state.openCalls.has(updateId)) callIds.push(callId)
  })
  // sorted: a hash map's order is not the order the calls were made in, and replay must match
  return callIds.sort().map((callId) => ({ _tag: "BotApiCallOutcomeUnknown", callId, reason: RESUMED_REASON }))
}

const handleUpdate = (
  handlerFor: (state: BotState) => UpdateHandler,
  input: InputOf<"HandleUpdate">,
  state: BotState
): MaybePromise<ReadonlyArray<DomainEvent>> => {
  const updateId = updateIdOf(input.update)
  if (updateId === null) {
    return [{ _tag: "UpdateFailed", inboxId: input.inboxId, updateId: -1, reason: "the entry has no numeric update_id" }]
  }
  // a handoff or bot message is deduplicated by its own id (handoff.ts, botMessage.ts), not in the window of Telegram's ids
  if (handoffOf(input.update) === null && botMessageOf(input.update) === null && isRecentUpdate(state, updateId, input.at)) {
    return [{ _tag: "UpdateDuplicateDropped", inboxId: input.inboxId, updateId }]
  }
  if (state.status === "removed") {
    return [{ _tag: "UpdateFailed", inboxId: input.inboxId, updateId, reason: "the bot is removed" }]
  }
  return runHandler(handlerFor, input, updateId, state)
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
      case "FailUpdate": {
        const updateId = updateIdOf(input.update) ?? -1
        return [...unknownOutcomes(state, updateId), { _tag: "UpdateFailed", inboxId: input.inboxId, updateId, reason: input.reason }]
      }
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
      case "RotateToken":
        if (state.status === "unregistered") throw new InputRejected({ input: input._tag, reason: "the bot is not registered" })
        if (state.status === "removed") throw new InputRejected({ input: input._tag, reason: "the bot is removed" })
        return state.tokenCiphertext === input.tokenCiphertext ? [] : [{ _tag: "BotTokenRotated", tokenCiphertext: input.tokenCiphertext }]
      case "Start":
        if (state.status === "removed") throw new InputRejected({ input: input._tag, reason: "the bot is removed" })
        if (state.status === "running" && state.node?.nodeId === input.nodeId && state.node.fence === input.fence) return abandonedCalls(state)
        return [{ _tag: "BotStarted", nodeId: input.nodeId, fence: input.fence }, ...abandonedCalls(state)]
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
