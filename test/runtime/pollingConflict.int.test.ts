import { randomBytes } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeBotApi } from "../../src/telegram/botApi.js"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import { createTestDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"
import { fleetEnv, registerOn, startTestNode } from "./support.js"
import type { TestNode } from "./support.js"

/*
 * A polling bot whose token still has a webhook (it ran on webhooks before): the node deletes the
 * webhook before polling, keeping what was pending; a webhook set again behind its back (409 on
 * every getUpdates) is the bot's crash, with a reason `status` shows, and the restart recovers.
 */

const redis = createTestPrefix("pollconflict")
let db: { url: string; drop: () => Promise<void> }
let dataDir: string
let running: TestNode | null = null
const secretKey = randomBytes(32).toString("base64")

beforeAll(async () => {
  db = await createTestDatabase("pollconflict")
  dataDir = await mkdtemp(join(tmpdir(), "bf-pollconflict-"))
})
afterAll(async () => {
  await running?.stop()
  await db.drop()
  await redis.cleanup()
  await rm(dataDir, { recursive: true, force: true })
})

describe("polling a token that has a webhook", () => {
  it("deletes the webhook first; a lasting 409 is a BotCrashed with the reason, and the restart polls again", async () => {
    const telegram = await startSandbox()
    try {
      const tgBot = telegram.world.createBot({ username: "was_hooked_bot" })
      const api = makeBotApi(tgBot.token, { apiRoot: telegram.apiRoot })
      await Effect.runPromise(api.call("setWebhook", { url: "http://127.0.0.1:9/old-host" }))
      telegram.world.say("was_hooked_bot", { userId: 4, text: "ping" })
      running = await startTestNode(fleetEnv({ db, redis, secretKey, dataDir }, { TELEGRAM_API_ROOT: telegram.apiRoot }))
      const { node } = running
      await registerOn(node, { botId: "hooked", ownerId: "o1", name: "Hooked", kind: "builtin", mode: "polling", token: Redacted.make(tgBot.token), config: { keywords: [{ match: "ping", reply: "pong" }] } })
      await Effect.runPromise(node.startBot("hooked"))
      const texts = () => telegram.world.messages("was_hooked_bot", 4).map((m) => m.text)
      // the update sent while the webhook was set is answered: the webhook went, its pending updates stayed
      await expect.poll(texts, { timeout: 30_000 }).toEqual(["pong"])

      // someone sets a webhook on the token again: every getUpdates is refused with 409
      await Effect.runPromise(api.call("setWebhook", { url: "http://127.0.0.1:9/other-program" }))
      const crashes = async () =>
        (await Effect.runPromise(node.stores.log.readStream("hooked"))).flatMap((e) => (e.data._tag === "BotCrashed" ? [e.data.reason] : []))
      await expect.poll(async () => (await crashes()).length, { timeout: 30_000 }).toBeGreaterThanOrEqual(1)
      expect((await crashes())[0]).toMatch(/PollingConflict.*409 Conflict.*webhook is active/)
      const status = await Effect.runPromise(node.supervisor.status("hooked"))
      expect(status?.lastError ?? "").toMatch(/409 Conflict/)
      // the restart deletes the webhook again and the bot answers
      telegram.world.say("was_hooked_bot", { userId: 4, text: "ping again" })
      await expect.poll(texts, { timeout: 30_000 }).toEqual(["pong", "pong"])
      await running.stop()
      running = null
    } finally {
      await telegram.close()
    }
  }, 120_000)
})
