import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startSandbox } from "../../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../../src/telegram/sandbox/server.js"
import { defaultSendLimits } from "../../../src/telegram/limits.pure.js"
import { makeMiniActor } from "../support/miniActor.js"

// a roomier chat burst than Telegram's, on both sides, so a scripted conversation is not paced
const limits = { ...defaultSendLimits, perChat: { rate: 1, perMs: 1000, burst: 20 } }

let sandbox: Sandbox
beforeAll(async () => {
  sandbox = await startSandbox({ limits })
})
afterAll(async () => {
  await sandbox.close()
})

const menus = {
  main: {
    text: "What do you need?",
    command: "menu",
    description: "the shop menu",
    buttons: [[{ text: "Hours", answer: "9 to 5" }, { text: "More", menu: "more" }], [{ text: "Site", url: "https://example.org" }]]
  },
  more: { text: "More things", buttons: [[{ text: "Back", menu: "main" }, { text: "Refund", reply: "Refunds take 3 days." }]] }
}
const config = { commands: { hours: "We open at 9." }, fallback: "Sorry?", menus, startMenu: "main" }

const post = async (path: string, body: unknown) =>
  (await fetch(`${sandbox.apiRoot}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })).json() as Promise<Record<string, unknown>>

describe("the built-in bot's unknown commands and menus, on the sandbox", () => {
  it("answers an unknown command with the default, an owner's text, or not at all", async () => {
    const bot = sandbox.world.createBot({ username: "cmd_bot" })
    const actor = makeMiniActor({ botId: "cmd_bot", token: bot.token, apiRoot: sandbox.apiRoot, config: { commands: { hours: "We open at 9." }, fallback: "Sorry?" } })
    for (const text of ["/hours", "/stats", "/stats@other_bot", "/Stats@cmd_bot please"]) await actor.handle(sandbox.world.say("cmd_bot", { userId: 11, text }).update)
    expect(sandbox.world.messages("cmd_bot", 11).map((m) => m.text)).toEqual([
      "We open at 9.",
      "I don't know that command, try /help",
      "I don't know that command, try /help"
    ])
    // in a group, a bare command may be another bot's: no answer; addressed to this bot: answered
    await actor.handle(sandbox.world.say("cmd_bot", { userId: 11, chatId: -500, text: "/stats" }).update)
    await actor.handle(sandbox.world.say("cmd_bot", { userId: 11, chatId: -500, text: "/stats@cmd_bot" }).update)
    expect(sandbox.world.messages("cmd_bot", -500).map((m) => m.text)).toEqual(["I don't know that command, try /help"])

    const quiet = sandbox.world.createBot({ username: "quiet_bot" })
    const own = makeMiniActor({ botId: "quiet", token: quiet.token, apiRoot: sandbox.apiRoot, config: { unknownCommand: false } })
    await own.handle(sandbox.world.say("quiet_bot", { userId: 12, text: "/stats" }).update)
    expect(sandbox.world.messages("quiet_bot", 12)).toEqual([])
    const custom = sandbox.world.createBot({ username: "custom_bot" })
    const c = makeMiniActor({ botId: "custom", token: custom.token, apiRoot: sandbox.apiRoot, config: { unknownCommand: "No such command. /help lists mine." } })
    await c.handle(sandbox.world.say("custom_bot", { userId: 13, text: "/stats" }).update)
    expect(sandbox.world.messages("custom_bot", 13).map((m) => m.text)).toEqual(["No such command. /help lists mine."])
  })

  it("shows menus as inline keyboards; buttons answer, reply and switch menus through the sandbox's click route", async () => {
    const bot = sandbox.world.createBot({ username: "menu_bot" })
    const actor = makeMiniActor({ botId: "menu", token: bot.token, apiRoot: sandbox.apiRoot, config })
    const deliver = async () => {
      // the click route queued an update: hand the pending ones to the actor, as the poller would
      while (bot.pending.length > 0) await actor.handle(bot.pending.shift())
    }
    bot.pending.length = 0
    await actor.handle(sandbox.world.say("menu_bot", { userId: 21, text: "/start", firstName: "Ann" }).update)
    const greeting = sandbox.world.messages("menu_bot", 21)[0]!
    expect(greeting.reply_markup).toEqual({
      inline_keyboard: [
        [{ text: "Hours", callback_data: "bf:main:0.0" }, { text: "More", callback_data: "bf:main:0.1" }],
        [{ text: "Site", url: "https://example.org" }]
      ]
    })
    bot.pending.length = 0

    // Hours: a notice on the user's screen, nothing in the chat
    const hours = await post("/sandbox/menu_bot/click", { userId: 21, messageId: greeting.message_id, data: "bf:main:0.0" })
    await deliver()
    expect(bot.callbackAnswers.get(String(hours["callback_query_id"]))).toEqual({ text: "9 to 5", showAlert: false })
    const seen = await (await fetch(`${sandbox.apiRoot}/sandbox/menu_bot/callbackAnswer?id=${String(hours["callback_query_id"])}`)).json()
    expect(seen).toEqual({ answer: { text: "9 to 5", showAlert: false } })
    expect(sandbox.world.messages("menu_bot", 21)).toHaveLength(1)

    // More: the same message now shows the other menu (edited), the spinner is ended without a notice
    const more = await post("/sandbox/menu_bot/click", { userId: 21, messageId: greeting.message_id, data: "bf:main:0.1" })
    await deliver()
    expect(bot.callbackAnswers.get(String(more["callback_query_id"]))).toEqual({ text: "", showAlert: false })
    const edited = sandbox.world.messages("menu_bot", 21)[0]!
    expect(edited.text).toBe("More things")
    expect(edited.edit_date).toBeDefined()

    // Refund: a message into the chat
    await post("/sandbox/menu_bot/click", { userId: 21, messageId: greeting.message_id, data: "bf:more:0.1" })
    await deliver()
    expect(sandbox.world.messages("menu_bot", 21).map((m) => m.text)).toEqual(["More things", "Refunds take 3 days."])

    // /menu opens the main menu as a new message; /help lists it
    await actor.handle(sandbox.world.say("menu_bot", { userId: 21, text: "/menu" }).update)
    await actor.handle(sandbox.world.say("menu_bot", { userId: 21, text: "/help" }).update)
    const [, , menu, help] = sandbox.world.messages("menu_bot", 21)
    expect(menu!.text).toBe("What do you need?")
    expect(help!.text).toContain("/menu - the shop menu")

    // a button the page no longer shows is refused by the sandbox; a stale one the bot no longer has gets a notice
    expect((await post("/sandbox/menu_bot/click", { userId: 21, messageId: greeting.message_id, data: "bf:main:0.0" }))["ok"]).toBe(false)
    const stale = sandbox.world.createBot({ username: "stale_bot" })
    const old = makeMiniActor({ botId: "stale", token: stale.token, apiRoot: sandbox.apiRoot, config })
    await old.handle(sandbox.world.say("stale_bot", { userId: 22, text: "/menu" }).update)
    stale.pending.length = 0
    const changed = makeMiniActor({ botId: "stale", token: stale.token, apiRoot: sandbox.apiRoot, events: [...old.events, { _tag: "BotConfigChanged", patch: { menus: null, startMenu: null } }] })
    const press = sandbox.world.click("stale_bot", { userId: 22, messageId: sandbox.world.messages("stale_bot", 22)[0]!.message_id, data: "bf:main:0.0" })
    await changed.handle(press)
    expect([...stale.callbackAnswers.values()]).toEqual([{ text: "This button is no longer available.", showAlert: false }])

    // every call went through the recorded path: intents, results, and the presses' updates
    const tags = actor.events.map((e) => e._tag)
    expect(tags.filter((t) => t === "UpdateReceived")).toHaveLength(6)
    expect(actor.state.pendingCalls.size).toBe(0)
    expect(actor.events.filter((e) => e._tag === "BotApiCallIntended").map((e) => (e as { method: string }).method)).toEqual([
      "sendMessage", "answerCallbackQuery", "answerCallbackQuery", "editMessageText", "answerCallbackQuery", "sendMessage", "sendMessage", "sendMessage"
    ])
  })
})
