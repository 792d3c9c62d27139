import fc from "fast-check"
import { describe, expect, it } from "vitest"
import type { DomainEvent } from "../../src/events/schema/catalogue.js"
import { makeEventTally } from "../../src/metrics/eventTally.pure.js"
import type { TalliedEvent } from "../../src/metrics/eventTally.pure.js"

const ev = (botId: string, correlationId: string, data: DomainEvent): TalliedEvent => ({ botId, correlationId, data })
const received = (botId: string, entry: string, receivedAt: string) =>
  ev(botId, `inbox:${entry}`, { _tag: "UpdateReceived", inboxId: entry, updateId: 1, update: {}, receivedAt })
const reply = (botId: string, entry: string, at: string) => ev(botId, `inbox:${entry}`, { _tag: "ReplySent", chatId: 5, messageId: 9, text: "hi", at })

describe("metrics from projected events", () => {
  it("counts each update's outcome once, and learns a bot's kind from its registration", () => {
    const tally = makeEventTally()
    const out = tally([
      ev("a", "c", { _tag: "BotRegistered", ownerId: "o", name: "A", kind: "shop", mode: "sandbox" }),
      received("a", "1-0", "2025-01-01T00:00:00.000Z"),
      ev("a", "inbox:2-0", { _tag: "UpdateFailed", inboxId: "2-0", updateId: 2, reason: "boom" }),
      ev("a", "inbox:3-0", { _tag: "UpdateDuplicateDropped", inboxId: "3-0", updateId: 1 }),
      ev("a", "x", { _tag: "SessionChanged", key: "k", patch: {} })
    ])
    expect(out).toEqual([
      { _tag: "Kind", botId: "a", kind: "shop" },
      { _tag: "Update", botId: "a", outcome: "handled" },
      { _tag: "Update", botId: "a", outcome: "failed" },
      { _tag: "Update", botId: "a", outcome: "duplicate" }
    ])
  })

  it("measures from the update entering the inbox to its first reply, across batches, once per update", () => {
    const tally = makeEventTally()
    // an update with two replies: the second one is not its latency
    expect(tally([reply("a", "7-0", "2025-01-01T00:00:01.250Z"), reply("a", "7-0", "2025-01-01T00:00:03.000Z")])).toEqual([])
    expect(tally([received("a", "7-0", "2025-01-01T00:00:01.000Z")])).toEqual([
      { _tag: "Update", botId: "a", outcome: "handled" },
      { _tag: "Reply", botId: "a", seconds: 0.25 }
    ])
    // the same correlation id of another bot is another update; an update without a reply has no latency
    expect(tally([received("b", "7-0", "2025-01-01T00:00:00.000Z")])).toEqual([{ _tag: "Update", botId: "b", outcome: "handled" }])
    // a later UpdateReceived of the same entry (it cannot happen twice, but a redelivery must not count it again)
    expect(tally([received("a", "7-0", "2025-01-01T00:00:01.000Z")])).toEqual([{ _tag: "Update", botId: "a", outcome: "handled" }])
  })

  it("never reports a negative latency when the inbox store's clock is ahead of the actor's", () => {
    const tally = makeEventTally()
    const out = tally([reply("a", "1-0", "2025-01-01T00:00:00.000Z"), received("a", "1-0", "2025-01-01T00:00:00.040Z")])
    expect(out).toContainEqual({ _tag: "Reply", botId: "a", seconds: 0 })
  })

  it("keeps at most maxOpen replies waiting for their update: the oldest is forgotten first", () => {
    const tally = makeEventTally(3)
    tally(["1-0", "2-0", "3-0", "4-0"].map((entry) => reply("a", entry, "2025-01-01T00:00:02.000Z")))
    expect(tally([received("a", "1-0", "2025-01-01T00:00:01.000Z")]).filter((o) => o._tag === "Reply")).toEqual([])
    expect(tally([received("a", "4-0", "2025-01-01T00:00:01.000Z")]).filter((o) => o._tag === "Reply")).toEqual([{ _tag: "Reply", botId: "a", seconds: 1 }])
  })

  it("counts every UpdateReceived once and measures a reply at most once per update, whatever the order (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ bot: fc.constantFrom("a", "b"), entry: fc.integer({ min: 0, max: 50 }), kind: fc.constantFrom("reply", "received", "failed") }), { maxLength: 300 }),
        (steps) => {
          const tally = makeEventTally(8)
          let handled = 0
          let replies = 0
          let expectedHandled = 0
          for (const s of steps) {
            const entry = `${s.entry}-0`
            const e =
              s.kind === "reply"
                ? reply(s.bot, entry, "2025-01-01T00:00:02.000Z")
                : s.kind === "received"
                  ? received(s.bot, entry, "2025-01-01T00:00:01.000Z")
                  : ev(s.bot, `inbox:${entry}`, { _tag: "UpdateFailed", inboxId: entry, updateId: 1, reason: "x" })
            if (s.kind === "received") expectedHandled++
            for (const o of tally([e])) {
              if (o._tag === "Update" && o.outcome === "handled") handled++
              if (o._tag === "Reply") {
                replies++
                expect(o.seconds).toBe(1)
              }
            }
          }
          expect(handled).toBe(expectedHandled)
          // a reply is measured at most once per UpdateReceived
          expect(replies).toBeLessThanOrEqual(expectedHandled)
        }
      )
    )
  })
})
