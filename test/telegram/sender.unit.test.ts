import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { RateLimited, TelegramUnavailable } from "../../src/telegram/botApi.js"
import type { BotApiError } from "../../src/telegram/botApi.js"
import { sendLimitsOf } from "../../src/telegram/limits.pure.js"
import { Sender } from "../../src/telegram/sender.js"

/** A virtual clock: sleeping advances time at once, so hours of pacing run in microseconds. */
const virtualTime = () => {
  let now = 0
  return { now: () => now, sleep: async (ms: number) => void (now += ms), get t() { return now } }
}

describe("outbox sender (virtual time)", () => {
  it("paces a burst to one private chat to the per-chat limit", async () => {
    const clock = virtualTime()
    const sentAt: number[] = []
    const sender = new Sender({ now: clock.now, sleep: clock.sleep })
    const call = () => Effect.sync(() => void sentAt.push(clock.t))
    await Promise.all(Array.from({ length: 6 }, (_, i) => sender.send("b", "sendMessage", { chat_id: 1, text: String(i) }, call)))
    // burst of 3, then one per second
    expect(sentAt).toEqual([0, 0, 0, 1000, 2000, 3000])
  })

  it("takes new limits while it runs (SEND_LIMIT_PER_CHAT changed live)", async () => {
    const clock = virtualTime()
    const sentAt: number[] = []
    const sender = new Sender({ now: clock.now, sleep: clock.sleep, limits: sendLimitsOf({ perBotPerSecond: 30, perChatPerSecond: 1, perGroupPerMinute: 20 }) })
    const call = () => Effect.sync(() => void sentAt.push(clock.t))
    await Promise.all(Array.from({ length: 4 }, (_, i) => sender.send("b", "sendMessage", { chat_id: 1, text: String(i) }, call)))
    expect(sentAt).toEqual([0, 0, 0, 1000])
    sender.setLimits(sendLimitsOf({ perBotPerSecond: 30, perChatPerSecond: 10, perGroupPerMinute: 20 }))
    sentAt.length = 0
    await Promise.all(Array.from({ length: 20 }, (_, i) => sender.send("b", "sendMessage", { chat_id: 1, text: String(i) }, call)))
    // ten a second now: 20 sends take 2 s, where one a second would take 20 s
    expect(sentAt[sentAt.length - 1]! - 1000).toBe(2000)
  })

  it("waits retry_after on a 429 and sends again; gives up after the budget as refused (Telegram did not act)", async () => {
    const clock = virtualTime()
    let n = 0
    const flaky = (): Effect.Effect<unknown, BotApiError> =>
      n++ < 2 ? Effect.fail(new RateLimited({ method: "sendMessage", retryAfterS: 5, description: "Too Many Requests: retry after 5" })) : Effect.succeed({ message_id: 1 })
    const sender = new Sender({ now: clock.now, sleep: clock.sleep })
    expect(await sender.send("b", "sendMessage", { chat_id: 1, text: "x" }, flaky)).toEqual({ _tag: "Sent", result: { message_id: 1 } })
    expect(clock.t).toBe(10_000)
    const always = () => Effect.fail(new RateLimited({ method: "sendMessage", retryAfterS: 1, description: "slow down" }))
    const capped = new Sender({ now: clock.now, sleep: clock.sleep, maxRateLimitRetries: 2 })
    expect(await capped.send("b", "sendMessage", { chat_id: 2, text: "x" }, always)).toMatchObject({ _tag: "Refused", errorCode: 429, retryAfter: 1 })
  })

  it("never retries a send whose outcome is unknown, retries idempotent calls with backoff", async () => {
    const clock = virtualTime()
    let calls = 0
    const down = () => {
      calls++
      return Effect.fail(new TelegramUnavailable({ method: "m", status: 502, reason: "Bad Gateway" }))
    }
    const sender = new Sender({ now: clock.now, sleep: clock.sleep, backoffMs: 100, maxUnavailableRetries: 3 })
    expect((await sender.send("b", "sendMessage", { chat_id: 1, text: "x" }, down))._tag).toBe("Unknown")
    expect(calls).toBe(1)
    calls = 0
    expect((await sender.send("b", "editMessageText", { chat_id: 1, message_id: 1, text: "y" }, down))._tag).toBe("Unknown")
    expect(calls).toBe(4)
  })

  it("keeps one chat's order while another chat of the same bot goes ahead", async () => {
    const clock = virtualTime()
    const order: string[] = []
    const sender = new Sender({ now: clock.now, sleep: clock.sleep, limits: false })
    let first = true
    const call = (_m: string, p: Readonly<Record<string, unknown>>) =>
      Effect.gen(function* () {
        if (first) {
          first = false
          yield* Effect.fail(new RateLimited({ method: "sendMessage", retryAfterS: 3, description: "wait" }))
        }
        order.push(String(p["text"]))
      })
    await Promise.all([
      sender.send("b", "sendMessage", { chat_id: 1, text: "a1" }, call),
      sender.send("b", "sendMessage", { chat_id: 1, text: "a2" }, call),
      sender.send("b", "sendMessage", { chat_id: 2, text: "b1" }, call)
    ])
    expect(order).toEqual(["b1", "a1", "a2"])
  })
})
