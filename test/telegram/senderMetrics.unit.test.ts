import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { renderMetrics } from "../../src/metrics/registry.js"
import { RateLimited, TelegramRefused, TelegramUnavailable } from "../../src/telegram/botApi.js"
import type { BotApiError } from "../../src/telegram/botApi.js"
import { executeIntent } from "../../src/telegram/recordedCalls.js"
import { Sender } from "../../src/telegram/sender.js"
import { sumOf } from "../metrics/support.js"

/* What the Bot API sender reports to /metrics: calls by method and result, 429s, and the time calls waited. */

const virtualTime = () => {
  let now = 0
  return { now: () => now, sleep: async (ms: number) => void (now += ms) }
}
const metric = async (name: string, labels: Record<string, string> = {}) => sumOf(await renderMetrics(), name, labels)
const intent = (callId: string, method: string, params: Record<string, unknown>) => ({ _tag: "BotApiCallIntended" as const, callId, method, params })

describe("Bot API metrics", () => {
  it("counts calls by method and result, each 429 answer, and the seconds calls waited by reason", async () => {
    const before = {
      ok: await metric("botfleet_bot_api_calls_total", { method: "sendMessage", result: "ok" }),
      forbidden: await metric("botfleet_bot_api_calls_total", { method: "sendMessage", result: "403" }),
      unknown: await metric("botfleet_bot_api_calls_total", { method: "sendMessage", result: "unknown" }),
      limited: await metric("botfleet_bot_api_rate_limited_total"),
      retryAfter: await metric("botfleet_bot_api_wait_seconds_total", { reason: "retry_after" }),
      limit: await metric("botfleet_bot_api_wait_seconds_total", { reason: "limit" }),
      backoff: await metric("botfleet_bot_api_wait_seconds_total", { reason: "backoff" })
    }
    const clock = virtualTime()
    const sender = new Sender({ now: clock.now, sleep: clock.sleep, backoffMs: 100 })
    let n = 0
    // two 429s (retry after 2 s each), then sent
    const flaky = (): Effect.Effect<unknown, BotApiError> =>
      n++ < 2
        ? Effect.fail(new RateLimited({ method: "sendMessage", retryAfterS: 2, description: "Too Many Requests: retry after 2" }))
        : Effect.succeed({ message_id: n, chat: { id: 5 }, text: "hi" })
    const ctx = { botKey: "b", sender, call: flaky, now: () => "2025-01-01T00:00:00.000Z" }
    expect((await executeIntent(intent("1:0", "sendMessage", { chat_id: 5, text: "hi" }), ctx)).map((e) => e._tag)).toEqual(["BotApiCallSucceeded", "ReplySent"])
    // four more to one private chat: past its burst of 3, the client-side limit makes them wait
    for (let i = 1; i <= 4; i++) await executeIntent(intent(`${i + 1}:0`, "sendMessage", { chat_id: 5, text: "again" }), ctx)
    const blocked = () => Effect.fail(new TelegramRefused({ method: "sendMessage", errorCode: 403, description: "Forbidden: bot was blocked by the user" }))
    await executeIntent(intent("9:0", "sendMessage", { chat_id: 6, text: "x" }), { ...ctx, call: blocked })
    const down = () => Effect.fail(new TelegramUnavailable({ method: "editMessageText", status: 502, reason: "Bad Gateway" }))
    await executeIntent(intent("10:0", "editMessageText", { chat_id: 7, message_id: 1, text: "y" }), { ...ctx, call: down })
    await executeIntent(intent("11:0", "sendMessage", { chat_id: 8, text: "z" }), { ...ctx, call: down })

    expect((await metric("botfleet_bot_api_calls_total", { method: "sendMessage", result: "ok" })) - before.ok).toBe(5)
    expect((await metric("botfleet_bot_api_calls_total", { method: "sendMessage", result: "403" })) - before.forbidden).toBe(1)
    expect((await metric("botfleet_bot_api_calls_total", { method: "sendMessage", result: "unknown" })) - before.unknown).toBe(1)
    expect(await metric("botfleet_bot_api_calls_total", { method: "editMessageText", result: "unknown" })).toBe(1)
    expect((await metric("botfleet_bot_api_rate_limited_total")) - before.limited).toBe(2)
    expect((await metric("botfleet_bot_api_wait_seconds_total", { reason: "retry_after" })) - before.retryAfter).toBe(4)
    expect((await metric("botfleet_bot_api_wait_seconds_total", { reason: "limit" })) - before.limit).toBeGreaterThan(0)
    // an idempotent edit retried 3 times after 100, 200, 400 ms
    expect((await metric("botfleet_bot_api_wait_seconds_total", { reason: "backoff" })) - before.backoff).toBeCloseTo(0.7)
  })
})
