import { randomBytes } from "node:crypto"
import { Effect, Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { fold } from "../../src/actors/decider/state.js"
import type { DomainEvent, EventOf } from "../../src/events/schema/catalogue.js"
import { makeCallExecutor } from "../../src/telegram/callExecutor.js"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { Sender } from "../../src/telegram/sender.js"
import { makeTokenVault } from "../../src/telegram/tokenVault.js"

/* The actor's Bot API port: opens the bot's token from its state, sends, reports the outcome as events. */

let sandbox: Sandbox
const vault = makeTokenVault(randomBytes(32))
beforeAll(async () => {
  sandbox = await startSandbox()
})
afterAll(async () => {
  await sandbox.close()
})

const intent = (text: string, chatId = 31): EventOf<"BotApiCallIntended"> => ({
  _tag: "BotApiCallIntended",
  callId: `1:${text.length}`,
  method: "sendMessage",
  params: { chat_id: chatId, text },
  awaited: true
})
const stateWith = (events: ReadonlyArray<DomainEvent>) => fold(events)

describe("call executor", () => {
  it("sends with the bot's own token (opened from its state) and records the real message", async () => {
    const bot = sandbox.world.createBot({ username: "port_bot" })
    sandbox.world.say("port_bot", { userId: 31, text: "hi" })
    const sealed = await Effect.runPromise(vault.seal("port", Redacted.make(bot.token)))
    const execute = makeCallExecutor({ vault, sender: new Sender({ limits: false }), apiRootFor: () => sandbox.apiRoot })
    const state = stateWith([{ _tag: "BotRegistered", ownerId: "o", name: "port", kind: "builtin", mode: "sandbox", tokenCiphertext: sealed }])
    const events = await execute("port", state, intent("hello"))
    expect(events.map((e) => e._tag)).toEqual(["BotApiCallSucceeded", "ReplySent"])
    const sent = sandbox.world.messages("port_bot", 31)
    expect(sent.map((m) => m.text)).toEqual(["hello"])
    expect(events[1]).toMatchObject({ chatId: 31, messageId: sent[0]!.message_id, text: "hello" })
  })

  it("records a refusal with nothing sent when the bot has no token, or one that does not open", async () => {
    const execute = makeCallExecutor({ vault, sender: new Sender({ limits: false }), apiRootFor: () => sandbox.apiRoot })
    const none = await execute("ghost", stateWith([{ _tag: "BotRegistered", ownerId: "o", name: "g", kind: "builtin", mode: "sandbox" }]), intent("x"))
    expect(none).toEqual([{ _tag: "BotApiCallFailed", callId: "1:1", errorCode: 0, description: "nothing was sent: the bot has no token" }])
    const other = await Effect.runPromise(makeTokenVault(randomBytes(32)).seal("ghost", Redacted.make("123456:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")))
    const wrongKey = await execute("ghost", stateWith([{ _tag: "BotRegistered", ownerId: "o", name: "g", kind: "builtin", mode: "sandbox", tokenCiphertext: other }]), intent("y"))
    expect(wrongKey[0]).toMatchObject({ _tag: "BotApiCallFailed", errorCode: 0 })
    expect((wrongKey[0] as EventOf<"BotApiCallFailed">).description).toMatch(/^nothing was sent: /)
    expect(JSON.stringify(wrongKey)).not.toContain("AAAAAAAA")
  })

  it("uses a rotated token from the next call on, not a client kept from before", async () => {
    const old = sandbox.world.createBot({ username: "rot_old_bot" })
    const renewed = sandbox.world.createBot({ username: "rot_new_bot" })
    sandbox.world.say("rot_old_bot", { userId: 32, text: "hi" })
    sandbox.world.say("rot_new_bot", { userId: 32, text: "hi" })
    const execute = makeCallExecutor({ vault, sender: new Sender({ limits: false }), apiRootFor: () => sandbox.apiRoot })
    const registered: DomainEvent = {
      _tag: "BotRegistered",
      ownerId: "o",
      name: "rot",
      kind: "builtin",
      mode: "sandbox",
      tokenCiphertext: await Effect.runPromise(vault.seal("rot", Redacted.make(old.token)))
    }
    expect((await execute("rot", stateWith([registered]), intent("one", 32)))[0]?._tag).toBe("BotApiCallSucceeded")
    sandbox.world.revoke("rot_old_bot")
    const rotated: DomainEvent = { _tag: "BotTokenRotated", tokenCiphertext: await Effect.runPromise(vault.seal("rot", Redacted.make(renewed.token))) }
    expect((await execute("rot", stateWith([registered, rotated]), intent("two", 32)))[0]?._tag).toBe("BotApiCallSucceeded")
    expect(sandbox.world.messages("rot_new_bot", 32).map((m) => m.text)).toEqual(["two"])
    // the old state still names the revoked token: refused by Telegram (401), recorded as such
    expect((await execute("rot", stateWith([registered]), intent("three", 32)))[0]).toMatchObject({ _tag: "BotApiCallFailed", errorCode: 401 })
  })
})
