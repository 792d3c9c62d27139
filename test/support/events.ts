import { Effect } from "effect"
import type { EventLogService } from "../../src/events/eventLog.js"
import type { DomainEvent, NewEvent } from "../../src/events/schema/envelope.js"

let counter = 0

/** A new event with plausible metadata; `data` is the payload under test. */
export const newEvent = (data: DomainEvent, overrides: Partial<NewEvent> = {}): NewEvent => ({
  data,
  occurredAt: "2026-11-26T10:00:00.000Z",
  correlationId: `corr-${++counter}`,
  causationId: null,
  actor: "system",
  ...overrides
})

/** A typical ~300-byte text update, as Telegram sends it. */
export const textUpdate = (updateId: number, chatId = 1001, text = "hello there, bot") => ({
  update_id: updateId,
  message: {
    message_id: updateId,
    from: { id: chatId, is_bot: false, first_name: "Ada", username: "ada", language_code: "en" },
    chat: { id: chatId, first_name: "Ada", username: "ada", type: "private" },
    date: 1_780_000_000,
    text
  }
})

export const updateReceived = (n: number, chatId = 1001): DomainEvent => ({
  _tag: "UpdateReceived",
  inboxId: `${n}-0`,
  updateId: n,
  update: textUpdate(n, chatId),
  receivedAt: "2026-11-26T10:00:00.000Z"
})

export const userSeen = (userId: number, firstName = "Ada"): DomainEvent => ({
  _tag: "UserSeen",
  userId,
  firstName,
  at: "2026-11-26T10:00:00.000Z"
})

/** Appends a new bot's first events under a lease of its own (taken and handed back), as a registration would. */
export const appendNewBot = (log: EventLogService, botId: string, events: ReadonlyArray<NewEvent>) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const lease = (yield* log.acquireLease(botId, "test", 10_000))!
      yield* log.append({ botId, expectedVersion: 0, fence: lease.fence, events })
      yield* log.releaseLease(lease)
    })
  )

/** A bot registered by its owner, nothing else: what a legacy import goes into. */
export const legacyBotRegistered: NewEvent = {
  occurredAt: "2026-11-26T09:00:00.000Z",
  correlationId: "c",
  actor: "owner:o",
  data: { _tag: "BotRegistered", ownerId: "o", name: "legacy", kind: "builtin", mode: "sandbox" }
}
