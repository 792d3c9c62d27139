import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { tagRequestOf } from "../../src/actors/decider/userTags.js"
import { makeRedisInbox } from "../../src/actors/redisInbox.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { productionCliEnv } from "./support.js"
import type { ProductionCliEnv } from "./support.js"

/* `botfleet users tag|untag`, in production mode (Redis log and inboxes, Postgres). */

let env: Record<string, string>
let sandbox: Sandbox
let cli: ProductionCliEnv["cli"]
let cleanup: () => Promise<void>

beforeAll(async () => {
  const setting = await productionCliEnv("cli-users-tag")
  ;({ env, sandbox, cli, cleanup } = setting)
})
afterAll(async () => {
  await cleanup()
})

describe("botfleet users tag", () => {
  it("puts tag and untag requests into the bot's inbox; refuses a bad tag, a bad user id and an unknown bot with nothing queued", async () => {
    const token = sandbox.world.createBot({ username: "club_bot" }).token
    expect((await cli({ BOT_TOKEN: token }, "bots", "add", "club", "--owner", "alice")).code).toBe(0)
    const tagged = await cli({}, "users", "tag", "club", "42", "VIP")
    expect(tagged.code).toBe(0)
    expect(tagged.out).toBe("tag vip of user 42 is in bot club's inbox: the bot records it when it takes it")
    const json = await cli({}, "users", "untag", "club", "42", "gold", "--json")
    expect(JSON.parse(json.out)).toEqual({ botId: "club", userId: 42, tag: "gold", tagged: false, queued: true })

    const bad = await cli({}, "users", "tag", "club", "42", "not a tag")
    expect(bad.code).toBe(1)
    expect(bad.err).toMatch(/1 to 32 lower-case letters.*nothing was changed/)
    expect((await cli({}, "users", "tag", "club", "-3", "vip")).code).toBe(2)
    expect((await cli({}, "users", "tag", "nobody", "42", "vip")).code).toBe(1)

    const inbox = makeRedisInbox({ url: env["REDIS_URL"]!, prefix: env["REDIS_PREFIX"]! })
    try {
      const entries = await Effect.runPromise(inbox.readAfter("club", null, 10))
      expect(entries.map((e) => tagRequestOf(e.update))).toMatchObject([{ userId: 42, tag: "vip", on: true }, { userId: 42, tag: "gold", on: false }])
      expect(await Effect.runPromise(inbox.readAfter("nobody", null, 10))).toEqual([])
    } finally {
      await Effect.runPromise(inbox.close)
    }
  })
})
