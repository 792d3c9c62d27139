import { describe, it } from "vitest"
import { makeBotDecider } from "../../../src/actors/decider/decide.js"
import type { DomainEvent } from "../../../src/events/schema/catalogue.js"
import { deciderSpec } from "../deciderSpec.js"

/*
 * `botfleet dlq retry --bot` puts a failed update back in the inbox with its update_id unchanged.
 * The decider must handle it (UpdateFailed does not mark the id as seen), and exactly once: after
 * it was handled, a further copy is a duplicate.
 */

const given = deciderSpec(makeBotDecider(() => ({ handle: () => [] })))
const registered: DomainEvent = { _tag: "BotRegistered", ownerId: "o1", name: "Echo", kind: "echo", mode: "sandbox" }
const update = { update_id: 9, message: { message_id: 90, chat: { id: 7, type: "private" }, from: { id: 99 }, text: "boom" } }
const failed: DomainEvent = { _tag: "UpdateFailed", inboxId: "9-0", updateId: 9, reason: "Error: boom" }
const later = "2026-01-01T11:00:00.000Z"

describe("a dead-lettered update retried", () => {
  it("is handled when it comes back, although its update_id was seen (and failed) before", async () => {
    await given([registered, failed])
      .when({ _tag: "HandleUpdate", inboxId: "12-0", update, at: later })
      .then([{ _tag: "UpdateReceived", inboxId: "12-0", updateId: 9, update, receivedAt: later }])
  })

  it("is a duplicate once handled, so a second copy changes nothing", async () => {
    const handled: DomainEvent = { _tag: "UpdateReceived", inboxId: "12-0", updateId: 9, update, receivedAt: later }
    await given([registered, failed, handled])
      .when({ _tag: "HandleUpdate", inboxId: "13-0", update, at: later })
      .then([{ _tag: "UpdateDuplicateDropped", inboxId: "13-0", updateId: 9 }])
  })
})
