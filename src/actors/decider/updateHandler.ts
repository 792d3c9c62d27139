import { Data } from "effect"
import type { DomainEvent } from "../../events/schema/catalogue.js"
import { legacyKey, readUser, sessionKey, trackedRead, userKey } from "./entries.js"
import type { EntryReads, KnownUser } from "./entries.js"
import type { Json, JsonObject } from "./mergePatch.js"
import type { BotState, BotStatus } from "./state.js"

/** The part of a Telegram Update the runtime itself reads; handlers see the whole object. */
export interface TelegramUpdate {
  readonly update_id: number
  readonly message?: {
    readonly message_id: number
    readonly date?: number
    readonly text?: string
    readonly chat: { readonly id: number; readonly type: string }
    readonly from?: { readonly id: number; readonly first_name?: string }
  }
  readonly [field: string]: unknown
}

/** A Bot API `chat_id` as a number (Telegram takes numbers and numeric strings), or null for a @channel name. */
export const chatIdOf = (value: unknown): number | null =>
  typeof value === "number" && Number.isSafeInteger(value) ? value : typeof value === "string" && /^-?\d{1,16}$/.test(value) ? Number(value) : null

/**
 * The user writing to the bot in a private chat with this update, if any: a user who writes has
 * not blocked the bot (writing to a bot one stopped restarts it).
 */
export const privateWriterOf = (update: unknown): number | null => {
  const u = update as { message?: { chat?: { id?: unknown; type?: unknown }; from?: { id?: unknown } } } | null
  const m = u?.message
  return m?.chat?.type === "private" && typeof m.from?.id === "number" && m.chat.id === m.from.id ? m.from.id : null
}

/** The update_id of an inbox payload, or null when it has none (a malformed entry). */
export const updateIdOf = (update: unknown): number | null => {
  const id = (update as { update_id?: unknown } | null)?.update_id
  return typeof id === "number" && Number.isSafeInteger(id) ? id : null
}

/**
 * What bot code sees of its bot's state: the bot-level settings, and the users and sessions it
 * asks for by key. Counters, the dedupe window and other updates' calls are left out: they change
 * while a batch of updates is decided together, and a decision must not depend on how updates
 * were batched (replay decides each one alone).
 */
export interface BotView {
  readonly status: BotStatus
  readonly ownerId: string | null
  readonly name: string | null
  readonly kind: string | null
  readonly mode: BotState["mode"]
  readonly config: JsonObject
  readonly users: { readonly get: (userId: number) => KnownUser | undefined }
  readonly sessions: { readonly get: (key: string) => Json | undefined }
  /**
   * Records imported from the legacy bot (`botfleet import`), read-only, by collection and key as
   * the import reports them (`get("data.todos", "0")`, `get("settings", "welcome")`); undefined
   * when there is no such record. See docs/import.md.
   */
  readonly legacy: { readonly get: (collection: string, key: string) => Json | undefined }
  /** Any other keyed entry (`c:<chat>`, `p:<user>`, `ai:bot`...), read the same tracked way. */
  readonly entries: { readonly get: (key: string) => Json | undefined }
}

/** The view of `state` bot code gets, recording every entry it reads into `reads`. */
export const viewOf = (state: BotState, reads: EntryReads): BotView => ({
  status: state.status,
  ownerId: state.ownerId,
  name: state.name,
  kind: state.kind,
  mode: state.mode,
  config: state.config,
  users: { get: (userId) => (trackedRead(state.entries, reads, userKey(userId)) as KnownUser | undefined) },
  sessions: { get: (key) => trackedRead(state.entries, reads, sessionKey(key)) },
  legacy: {
    get: (collection, key) => {
      const entry = trackedRead(state.entries, reads, legacyKey(collection, key)) as { readonly record: Json } | undefined
      return entry?.record
    }
  },
  entries: { get: (key) => trackedRead(state.entries, reads, key) }
})

/** A user of a fully loaded state (tests, tools): `readUser` without tracking. */
export const userOf = (state: BotState, userId: number): KnownUser | undefined => readUser(state.entries, userId)

export interface UpdateContext {
  /** The state before this update, as bot code may read it. */
  readonly state: BotView
  readonly update: TelegramUpdate
  readonly updateId: number
  readonly inboxId: string
  /** When the update was received, recorded at the edge: the only clock a handler may read. */
  readonly at: string
  /**
   * Calls the Bot API and resolves with Telegram's result. The call's intent is recorded before it
   * is sent and its outcome after; the update is then decided again and this call resolves with
   * the recorded result (so does a replay, which sends nothing). Rejects with `RecordedCallFailed`
   * when Telegram refused it, and with `RecordedCallUnknown` when a crash between sending and
   * recording left its outcome unknown (it is never sent again).
   */
  readonly call: (method: string, params?: Readonly<Record<string, unknown>>) => Promise<unknown>
}

/** Telegram refused a handler's call (recorded as BotApiCallFailed). */
export class RecordedCallFailed extends Data.TaggedError("RecordedCallFailed")<{
  readonly callId: string
  readonly method: string
  readonly errorCode: number
  readonly description: string
  readonly retryAfter?: number | undefined
}> {
  override get message() {
    return `${this.method} failed: ${this.errorCode} ${this.description}`
  }
}

/** Whether Telegram acted on a handler's call is unknown (recorded as BotApiCallOutcomeUnknown; never re-sent). */
export class RecordedCallUnknown extends Data.TaggedError("RecordedCallUnknown")<{
  readonly callId: string
  readonly method: string
  readonly reason: string
}> {
  override get message() {
    return `${this.method}: outcome unknown (${this.reason}); it is not sent again`
  }
}

/** The handler, resumed after a crash or a deploy, made a different call than the one recorded at this position. */
export class RecordedCallMismatch extends Data.TaggedError("RecordedCallMismatch")<{
  readonly callId: string
  readonly recorded: string
  readonly called: string
}> {
  override get message() {
    return `call ${this.callId} was recorded as ${this.recorded} but the handler now calls ${this.called}`
  }
}

/**
 * The bot-kind extension point: what a bot does with an update. It returns the facts the update
 * caused (replies, session patches, Bot API intents...); the runtime records `UpdateReceived`
 * (which advances the inbox cursor) and these events in ONE append, so they happen exactly once.
 * It must be deterministic in its context (no clock, no randomness, no I/O) so replay re-derives
 * the same events. It may be async (telegraf middleware is); a throw dead-letters the update.
 */
export interface UpdateHandler {
  readonly handle: (ctx: UpdateContext) => ReadonlyArray<DomainEvent> | PromiseLike<ReadonlyArray<DomainEvent>>
}

/** Built-in trivial kind: replies to a text message with the same text. For tests and demos. */
export const echoHandler: UpdateHandler = {
  handle: ({ update, at }) => {
    const m = update.message
    if (!m || typeof m.text !== "string") return []
    return [
      {
        _tag: "MessageReceived",
        chatId: m.chat.id,
        chatType: m.chat.type,
        userId: m.from?.id,
        messageId: m.message_id,
        text: m.text,
        at
      },
      { _tag: "ReplySent", chatId: m.chat.id, messageId: -m.message_id, text: m.text, inReplyTo: m.message_id, at }
    ]
  }
}
