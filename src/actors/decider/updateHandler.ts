import type { DomainEvent } from "../../events/schema/catalogue.js"
import type { BotState } from "./state.js"

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

/** The update_id of an inbox payload, or null when it has none (a malformed entry). */
export const updateIdOf = (update: unknown): number | null => {
  const id = (update as { update_id?: unknown } | null)?.update_id
  return typeof id === "number" && Number.isSafeInteger(id) ? id : null
}

export interface UpdateContext {
  /** The state before this update. */
  readonly state: BotState
  readonly update: TelegramUpdate
  readonly updateId: number
  readonly inboxId: string
  /** When the update was received, recorded at the edge: the only clock a handler may read. */
  readonly at: string
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
