import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { LogUnavailable } from "../../src/events/errors.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import type { DomainEvent } from "../../src/events/schema/envelope.js"
import { startOutboxRunner } from "../../src/telegram/outboxRunner.js"
import { Sender } from "../../src/telegram/sender.js"
import { newEvent } from "../support/events.js"

const run = <A, E>(e: Effect.Effect<A, E>) => Effect.runPromise(e)
const intent = (callId: string, text: string): DomainEvent => ({ _tag: "BotApiCallIntended", callId, method: "sendMessage", params: { chat_id: 1, text } })

describe("outbox runner when another node takes the bot over", () => {
  it("never sends what the new holder decided, nor its own unsent intents; the new holder's runner sends each once", async () => {
    let clock = 0
    const log = makeMemoryEventLog({ partitions: 4, now: () => clock })
    const bot = "takeover-bot"
    const sent: Array<{ node: string; text: unknown }> = []
    const callAs = (node: string) => (_method: string, params: Readonly<Record<string, unknown>>) =>
      Effect.sync(() => {
        sent.push({ node, text: params["text"] })
        return { message_id: sent.length }
      })
    const a = (await run(log.acquireLease(bot, "node-a", 1000)))!
    await run(log.append({ botId: bot, expectedVersion: 0, fence: a.fence, events: [newEvent({ _tag: "BotStarted", nodeId: "node-a", fence: a.fence })] }))
    const runnerA = await startOutboxRunner({ log, botId: bot, fence: a.fence, sender: new Sender({ limits: false }), call: callAs("node-a"), idlePollMs: 5 })

    // node A stalls; its lease expires and node B takes the bot, then decides a reply
    clock = 5000
    const b = (await run(log.acquireLease(bot, "node-b", 1000)))!
    // as on a node: the new holder's outbox starts before its actor records anything
    const runnerB = await startOutboxRunner({ log, botId: bot, fence: b.fence, sender: new Sender({ limits: false }), call: callAs("node-b"), idlePollMs: 5 })
    const v = await run(log.streamVersion(bot))
    await run(
      log.append({
        botId: bot,
        expectedVersion: v,
        fence: b.fence,
        events: [newEvent({ _tag: "BotStarted", nodeId: "node-b", fence: b.fence }), newEvent(intent("call-b1", "from B"))]
      })
    )
    runnerA.wake()
    runnerB.wake()
    await expect.poll(() => sent.length, { timeout: 3000 }).toBe(1)
    await runnerA.stop()
    await runnerB.stop()
    expect(sent).toEqual([{ node: "node-b", text: "from B" }])
    const types = (await run(log.readStream(bot))).map((e) => e.type)
    expect(types.filter((t) => t === "BotApiCallSucceeded")).toHaveLength(1)
  })
})

describe("outbox runner when the log fails while recording an outcome", () => {
  it("keeps the real result and records it once the log is back, without calling Telegram again", async () => {
    const base = makeMemoryEventLog({ partitions: 4 })
    const bot = "flaky-log-bot"
    let failNextOutcome = true
    const log = {
      ...base,
      append: (req: Parameters<typeof base.append>[0]) =>
        failNextOutcome && req.events.some((e) => e.data._tag === "BotApiCallSucceeded")
          ? Effect.suspend(() => {
              failNextOutcome = false
              return Effect.fail(new LogUnavailable({ operation: "append", cause: "redis failover" }))
            })
          : base.append(req)
    }
    const calls: unknown[] = []
    const lease = (await run(base.acquireLease(bot, "node-a", 60_000)))!
    const runner = await startOutboxRunner({
      log,
      botId: bot,
      fence: lease.fence,
      sender: new Sender({ limits: false }),
      call: (_m, params) => Effect.sync(() => (calls.push(params["text"]), { message_id: 77 })),
      idlePollMs: 5
    })
    await run(base.append({ botId: bot, expectedVersion: 0, fence: lease.fence, events: [newEvent({ _tag: "BotStarted", nodeId: "node-a", fence: lease.fence }), newEvent(intent("c1", "hello"))] }))
    runner.wake()
    const outcomes = async () => (await run(base.readStream(bot))).filter((e) => e.type.startsWith("BotApiCall") && e.type !== "BotApiCallIntended")
    await expect.poll(async () => (await outcomes()).length, { timeout: 3000 }).toBe(1)
    await runner.stop()
    expect(calls).toEqual(["hello"])
    expect((await outcomes())[0]?.data).toMatchObject({ _tag: "BotApiCallSucceeded", callId: "c1", result: { message_id: 77 } })
  })
})
