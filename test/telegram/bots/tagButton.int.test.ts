import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { defaultSendLimits } from "../../../src/telegram/limits.pure.js"
import { startSandbox } from "../../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../../src/telegram/sandbox/server.js"
import { makeMiniActor } from "../support/miniActor.js"

/* The built-in kind's `tag` button: the presser tags themselves (a "VIP news" opt-in), recorded on the bot's stream. */

const limits = { ...defaultSendLimits, perChat: { rate: 1, perMs: 1000, burst: 20 } }
let sandbox: Sandbox
beforeAll(async () => {
  sandbox = await startSandbox({ limits })
})
afterAll(async () => {
  await sandbox.close()
})

describe("the built-in kind's tag button", () => {
  it("tags the user who pressed it, once per press, as a fact on the bot's stream", async () => {
    const bot = sandbox.world.createBot({ username: "news_tag_bot" })
    const config = { menus: { main: { text: "News?", command: "menu", buttons: [[{ text: "VIP news", answer: "You are on the VIP list", tag: "vip" }]] } } }
    const actor = makeMiniActor({ botId: "news_tag_bot", token: bot.token, apiRoot: sandbox.apiRoot, config })
    await actor.handle(sandbox.world.say("news_tag_bot", { userId: 61, text: "/menu" }).update)
    const menu = sandbox.world.messages("news_tag_bot", 61).at(-1)!
    await actor.handle(sandbox.world.click("news_tag_bot", { userId: 61, messageId: menu.message_id, data: "bf:main:0.0" }))
    expect(actor.events.filter((e) => e._tag === "SessionChanged" && e.key.startsWith("tags:"))).toEqual([{ _tag: "SessionChanged", key: "tags:61", patch: { vip: true } }])
  })
})
