import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeBotApi } from "../../src/telegram/botApi.js"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { Sender } from "../../src/telegram/sender.js"

let sandbox: Sandbox
beforeAll(async () => {
  sandbox = await startSandbox()
})
afterAll(async () => {
  await sandbox.close()
})

const setup = (username: string, users: ReadonlyArray<number>) => {
  const bot = sandbox.world.createBot({ username })
  for (const u of users) sandbox.world.say(username, { userId: u, text: "hi" })
  return { bot, api: makeBotApi(bot.token, { apiRoot: sandbox.apiRoot }) }
}

describe("outbox sender on the sandbox", () => {
  it("rides out a 429 storm and delivers each message exactly once, in order", async () => {
    const { api } = setup("storm_bot", [1])
    sandbox.world.injectFaults("storm_bot", [
      { method: "sendMessage", errorCode: 429, retryAfter: 1 },
      { method: "sendMessage", errorCode: 429, retryAfter: 1 }
    ])
    const sender = new Sender()
    const outcomes = await Promise.all(["a", "b", "c"].map((text) => sender.send("storm", "sendMessage", { chat_id: 1, text }, api.call)))
    expect(outcomes.map((o) => o._tag)).toEqual(["Sent", "Sent", "Sent"])
    expect(sandbox.world.messages("storm_bot", 1).map((m) => m.text)).toEqual(["a", "b", "c"])
  })

  it("keeps within the sandbox's limits: a burst to one chat is paced, never refused", async () => {
    const { api } = setup("paced_bot", [2])
    const sender = new Sender()
    const outcomes = await Promise.all([1, 2, 3, 4].map((i) => sender.send("paced", "sendMessage", { chat_id: 2, text: `m${i}` }, api.call)))
    expect(outcomes.every((o) => o._tag === "Sent")).toBe(true)
    // each message once, in order (a 429 from clock drift between sender and server is ridden out)
    expect(sandbox.world.messages("paced_bot", 2).map((m) => m.text)).toEqual(["m1", "m2", "m3", "m4"])
  })

  it("does not retry a send after a 5xx (it might duplicate) but does retry an idempotent call", async () => {
    const { bot, api } = setup("flaky_bot", [3])
    sandbox.world.injectFaults("flaky_bot", [{ method: "sendMessage", errorCode: 500 }, { method: "getMe", errorCode: 502 }])
    const sender = new Sender({ backoffMs: 10 })
    const sent = await sender.send("flaky", "sendMessage", { chat_id: 3, text: "once" }, api.call)
    expect(sent._tag).toBe("Unknown")
    expect(bot.calls.get("sendMessage")).toBe(1)
    const me = await sender.send("flaky", "getMe", {}, api.call)
    expect(me._tag).toBe("Sent")
    expect(bot.calls.get("getMe")).toBe(2)
  })

  it("reports refusals without retrying", async () => {
    const { bot, api } = setup("refused_bot", [4])
    sandbox.world.block("refused_bot", 4)
    const sender = new Sender()
    expect(await sender.send("refused", "sendMessage", { chat_id: 4, text: "x" }, api.call)).toEqual({
      _tag: "Refused",
      errorCode: 403,
      description: "Forbidden: bot was blocked by the user"
    })
    expect(bot.calls.get("sendMessage")).toBe(1)
  })

  it("lets a fast bot through while a rate-limited bot waits", async () => {
    const slow = setup("slow_bot", [5])
    const fast = setup("quick_bot", [6])
    sandbox.world.injectFaults("slow_bot", [{ method: "sendMessage", errorCode: 429, retryAfter: 2 }])
    const sender = new Sender()
    const finished: string[] = []
    const a = sender.send("slow", "sendMessage", { chat_id: 5, text: "s" }, slow.api.call).then(() => finished.push("slow"))
    const b = sender.send("quick", "sendMessage", { chat_id: 6, text: "q" }, fast.api.call).then(() => finished.push("quick"))
    await Promise.all([a, b])
    expect(finished).toEqual(["quick", "slow"])
  })
})
