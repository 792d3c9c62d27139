import { createHash, randomBytes } from "node:crypto"
import { Effect, Either } from "effect"
import { Composer } from "telegraf"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeBotApi } from "../../src/telegram/botApi.js"
import { BotModuleRegistry } from "../../src/telegram/bots/registry.js"
import type { BotContext } from "../../src/telegram/bots/telegrafHandler.js"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { UploadRefused, recordableParams } from "../../src/telegram/uploads.js"
import { defaultSendLimits } from "../../src/telegram/limits.pure.js"
import { makeMiniActor } from "./support/miniActor.js"

const limits = { ...defaultSendLimits, perChat: { rate: 1, perMs: 1000, burst: 20 } }
let sandbox: Sandbox
beforeAll(async () => {
  sandbox = await startSandbox({ limits })
})
afterAll(async () => {
  await sandbox.close()
})

const picture = randomBytes(200_000)
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")

/** An owner's module that uploads a photo, then re-sends it as a document by its file_id, and sends one by URL. */
const mediaBot = () => {
  const bot = new Composer<BotContext>()
  bot.command("photo", async (ctx) => {
    const sent = await ctx.replyWithPhoto({ source: picture, filename: "chart.png" }, { caption: "Your chart" })
    await ctx.replyWithDocument(sent.photo.at(-1)!.file_id, { caption: "The same, as a file" })
  })
  bot.command("url", (ctx) => ctx.replyWithPhoto({ url: "https://example.org/cat.jpg" }))
  bot.command("path", (ctx) => ctx.replyWithDocument({ source: "/etc/hostname" }))
  return bot
}

describe("media: sendPhoto / sendDocument through the recorded calls", () => {
  it("uploads as multipart, records the upload's hash (not its bytes), and re-sends by file id", async () => {
    const registry = new BotModuleRegistry()
    registry.register("media", mediaBot)
    const tg = sandbox.world.createBot({ username: "media_bot" })
    const actor = makeMiniActor({ botId: "media_bot", token: tg.token, apiRoot: sandbox.apiRoot, kind: "media", registry })
    await actor.handle(sandbox.world.say("media_bot", { userId: 51, text: "/photo" }).update)

    const [photo, doc] = sandbox.world.messages("media_bot", 51)
    expect(photo!.caption).toBe("Your chart")
    const file = sandbox.world.files.get(photo!.photo![0]!.file_id)!
    expect(file.sha256).toBe(sha(picture))
    expect(file.name).toBe("chart.png")
    expect(doc!.document!.file_id).toBe(file.fileId)

    const intents = actor.events.filter((e) => e._tag === "BotApiCallIntended") as Array<{ method: string; params: Record<string, unknown> }>
    expect(intents.map((i) => i.method)).toEqual(["sendPhoto", "sendDocument"])
    expect(intents[0]!.params["photo"]).toEqual({ upload: `sha256:${sha(picture)}`, filename: "chart.png", size: picture.byteLength })
    // the log holds the hash, never the bytes
    expect(JSON.stringify(actor.events).length).toBeLessThan(10_000)
    expect(intents[1]!.params["document"]).toBe(file.fileId)
    expect(actor.events.filter((e) => e._tag === "ReplySent").map((e) => (e as { text: string }).text)).toEqual(["Your chart", "The same, as a file"])

    // the page can show it: the sandbox serves the bytes back
    const served = new Uint8Array(await (await fetch(`${sandbox.apiRoot}/sandbox/file/${file.fileId}`)).arrayBuffer())
    expect(sha(served)).toBe(sha(picture))

    // by URL: the URL is the param (Telegram downloads it)
    await actor.handle(sandbox.world.say("media_bot", { userId: 51, text: "/url" }).update)
    expect((actor.events.filter((e) => e._tag === "BotApiCallIntended").at(-1) as { params: Record<string, unknown> }).params["photo"]).toBe("https://example.org/cat.jpg")
  })

  it("refuses a file it cannot record (a path would be read during the decision) with a clear error, sending nothing", async () => {
    expect(() => recordableParams({ document: { source: "/etc/hostname" } })).toThrow(UploadRefused)
    expect(() => recordableParams({ document: { source: "/etc/hostname" } })).toThrow(/only a Buffer source/)
    const registry = new BotModuleRegistry()
    registry.register("media", mediaBot)
    const tg = sandbox.world.createBot({ username: "path_bot" })
    const actor = makeMiniActor({ botId: "path_bot", token: tg.token, apiRoot: sandbox.apiRoot, kind: "media", registry })
    await expect(actor.handle(sandbox.world.say("path_bot", { userId: 52, text: "/path" }).update)).rejects.toThrow(UploadRefused)
    expect(tg.calls.get("sendDocument")).toBeUndefined()
  })

  it("the Bot API client sends uploads as multipart, and refuses a reference whose bytes it no longer holds", async () => {
    const tg = sandbox.world.createBot({ username: "client_bot" })
    sandbox.world.say("client_bot", { userId: 53, text: "hi" })
    const api = makeBotApi(tg.token, { apiRoot: sandbox.apiRoot })
    const params = recordableParams({ chat_id: 53, document: { source: Buffer.from("report"), filename: "r.txt" }, reply_markup: { inline_keyboard: [[{ text: "ok", callback_data: "x" }]] } })
    const sent = (await Effect.runPromise(api.call("sendDocument", params))) as { document: { file_name: string }; reply_markup: unknown }
    expect(sent.document.file_name).toBe("r.txt")
    expect(sent.reply_markup).toEqual({ inline_keyboard: [[{ text: "ok", callback_data: "x" }]] })
    const gone = await Effect.runPromise(Effect.either(api.call("sendDocument", { chat_id: 53, document: { upload: `sha256:${"0".repeat(64)}`, filename: "x", size: 1 } })))
    expect(Either.isLeft(gone) && gone.left._tag === "TelegramRefused" && gone.left.description).toMatch(/no longer held by this node; nothing was sent/)
    expect(tg.calls.get("sendDocument")).toBe(1)
  })
})
