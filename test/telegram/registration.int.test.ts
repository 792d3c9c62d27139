import { randomBytes } from "node:crypto"
import { Effect, Either, Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { checkAndSealToken } from "../../src/telegram/registration.js"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { makeTokenVault } from "../../src/telegram/tokenVault.js"

let sandbox: Sandbox
beforeAll(async () => {
  sandbox = await startSandbox()
})
afterAll(async () => {
  await sandbox.close()
})
const vault = makeTokenVault(randomBytes(32))

describe("registering a bot token", () => {
  it("checks the token with getMe and keeps only its ciphertext", async () => {
    const bot = sandbox.world.createBot({ username: "reg_bot", firstName: "Reg" })
    const checked = await Effect.runPromise(checkAndSealToken({ botId: "reg", token: Redacted.make(bot.token), vault, apiRoot: sandbox.apiRoot }))
    expect(checked).toMatchObject({ telegramId: bot.id, username: "reg_bot", firstName: "Reg" })
    expect(JSON.stringify(checked)).not.toContain(bot.token.split(":")[1]!)
    expect(Redacted.value(await Effect.runPromise(vault.open("reg", checked.tokenCiphertext)))).toBe(bot.token)
  })

  it("refuses a revoked token, a malformed one and, on rotation, another bot's", async () => {
    const bot = sandbox.world.createBot({ username: "old_bot" })
    const other = sandbox.world.createBot({ username: "other_reg_bot" })
    sandbox.world.revoke("old_bot")
    const revoked = await Effect.runPromise(Effect.either(checkAndSealToken({ botId: "old", token: Redacted.make(bot.token), vault, apiRoot: sandbox.apiRoot })))
    expect(Either.isLeft(revoked) && revoked.left).toMatchObject({ _tag: "TelegramRefused", errorCode: 401 })
    const malformed = await Effect.runPromise(Effect.either(checkAndSealToken({ botId: "old", token: Redacted.make("nope"), vault, apiRoot: sandbox.apiRoot })))
    expect(Either.isLeft(malformed) && malformed.left._tag).toBe("TokenMalformed")
    const wrong = await Effect.runPromise(
      Effect.either(checkAndSealToken({ botId: "old", token: Redacted.make(other.token), vault, apiRoot: sandbox.apiRoot, expectedTelegramId: bot.id }))
    )
    expect(Either.isLeft(wrong) && wrong.left._tag).toBe("TokenForAnotherBot")
  })
})
