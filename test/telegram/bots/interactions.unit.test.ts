import { Either } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { checkBotConfig } from "../../../src/telegram/bots/configCheck.pure.js"
import { BuiltinConfigSchema } from "../../../src/telegram/bots/configSchema.pure.js"
import {
  DEFAULT_UNKNOWN_COMMAND,
  actionsOf,
  buttonOfCallback,
  commandOf,
  keyboardOf,
  parseInteractions,
  unknownCommandDue
} from "../../../src/telegram/bots/interactions.pure.js"

const check = (patch: unknown) => checkBotConfig({ botId: "b", kind: "builtin", current: {}, patch, schema: BuiltinConfigSchema })
const problems = (patch: unknown) => {
  const r = check(patch)
  if (Either.isRight(r)) throw new Error(`expected a refusal, got ${JSON.stringify(r.right)}`)
  return r.left.problems
}

const menus = {
  main: { text: "What do you need?", command: "menu", buttons: [[{ text: "Hours", answer: "9 to 5" }, { text: "More", menu: "more" }], [{ text: "Site", url: "https://example.org" }]] },
  more: { text: "More things", buttons: [[{ text: "Back", menu: "main" }, { text: "Refund", reply: "Refunds take 3 days.", answer: "Sent you the details" }]] }
}

describe("unknown commands", () => {
  it("answers with the default, an owner's text, or not at all (false)", () => {
    expect(parseInteractions({}).unknownCommand).toBe(DEFAULT_UNKNOWN_COMMAND)
    expect(parseInteractions({ unknownCommand: "No such thing." }).unknownCommand).toBe("No such thing.")
    expect(parseInteractions({ unknownCommand: false }).unknownCommand).toBeNull()
  })

  it("reads the command a message starts with, only when it is addressed to this bot", () => {
    expect(commandOf("/Stats now", "shop_bot")).toBe("stats")
    expect(commandOf("/stats@Shop_Bot", "shop_bot")).toBe("stats")
    expect(commandOf("/stats@other_bot", "shop_bot")).toBeNull()
    expect(commandOf("hello /stats", "shop_bot")).toBeNull()
    expect(commandOf("/", "shop_bot")).toBeNull()
  })

  it("is due in private chats, and in groups only when the command names this bot", () => {
    const known = new Set(["start", "help", "hours"])
    const due = (text: string, chatType = "private") => unknownCommandDue({ text, chatType, botUsername: "shop_bot", known })
    expect(due("/stats")).toBe(true)
    expect(due("/hours")).toBe(false)
    expect(due("/HELP")).toBe(false)
    expect(due("/stats", "supergroup")).toBe(false)
    expect(due("/stats@shop_bot", "supergroup")).toBe(true)
    expect(due("/stats@other_bot")).toBe(false)
    expect(due("stats")).toBe(false)
  })

  it("never answers a text that does not start with a command (property)", () => {
    fc.assert(
      fc.property(fc.string().filter((s) => !s.startsWith("/")), (text) => !unknownCommandDue({ text, chatType: "private", botUsername: "b_bot", known: new Set() }))
    )
  })
})

describe("menus", () => {
  it("builds inline keyboards whose callback data fits Telegram's 64 bytes and leads back to its button", () => {
    const config = parseInteractions({ menus })
    const kb = keyboardOf("main", config.menus["main"]!)
    expect(kb.inline_keyboard).toEqual([
      [{ text: "Hours", callback_data: "bf:main:0.0" }, { text: "More", callback_data: "bf:main:0.1" }],
      [{ text: "Site", url: "https://example.org" }]
    ])
    expect(buttonOfCallback(config, "bf:main:0.1")).toEqual({ text: "More", menu: "more" })
    expect(actionsOf(buttonOfCallback(config, "bf:more:0.1")!, config)).toEqual([
      { _tag: "Answer", text: "Sent you the details" },
      { _tag: "Reply", text: "Refunds take 3 days." }
    ])
    // a stale or forged callback (a menu since removed, a link button, not ours) names no button
    expect(buttonOfCallback(config, "bf:gone:0.0")).toBeNull()
    expect(buttonOfCallback(config, "bf:main:1.0")).toBeNull()
    expect(buttonOfCallback(config, "bf:main:9.9")).toBeNull()
    expect(buttonOfCallback(config, "other")).toBeNull()
    const longest = `bf:${"m".repeat(32)}:99.99`
    expect(new TextEncoder().encode(longest).length).toBeLessThanOrEqual(64)
  })

  it("accepts a valid menu config and refuses each problem at its path", () => {
    expect(Either.isRight(check({ menus, startMenu: "main", unknownCommand: false }))).toBe(true)
    expect(problems({ menus: { main: { text: "x", buttons: [[{ text: "a", menu: "nope" }]] } } })).toEqual([
      { path: "menus.main.buttons[0][0].menu", reason: "no menu named nope in menus" }
    ])
    expect(problems({ menus: { main: { text: "x", buttons: [[{ text: "a" }]] } } })).toEqual([
      { path: "menus.main.buttons[0][0]", reason: "a button needs url, answer, reply, menu, handoff, send or tag" }
    ])
    expect(problems({ menus: { main: { text: "x", buttons: [[{ text: "a", url: "https://x.org", reply: "y" }]] } } })[0]!.reason).toMatch(/either a link/)
    expect(problems({ menus: { main: { text: "x", buttons: [[{ text: "a", answer: "y".repeat(201) }]] } } })).toEqual([
      { path: "menus.main.buttons[0][0].answer", reason: "must be at most 200 characters" }
    ])
    expect(problems({ menus: { Main: { text: "x", buttons: [[{ text: "a", answer: "y" }]] } } })[0]!.path).toBe("menus.Main")
    expect(problems({ menus: { main: { text: "x", buttons: [] } } })[0]!.reason).toMatch(/at least one row/)
    expect(problems({ menus, startMenu: "nope" })).toEqual([{ path: "startMenu", reason: "no menu named nope in menus" }])
    expect(problems({ unknownCommand: "" })).toContainEqual({ path: "unknownCommand", reason: "must not be empty" })
    expect(problems({ unknownCommand: true })[0]!.path).toBe("unknownCommand")
  })
})
