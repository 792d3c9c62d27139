import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { tagRequestOf } from "../../src/actors/decider/userTags.js"
import { makeRedisInbox } from "../../src/actors/redisInbox.js"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { createTestDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"
import { captureCli } from "./support.js"

/* `botfleet users tag|untag`, in production mode (Redis log and inboxes, Postgres). */

let env: Record<string, string>
let sandbox: Sandbox
let cleanup: () => Promise<void>

const cli = (extraEnv: Record<string, string>, ...argv: Array<string>) => captureCli({ ...env, ...extraEnv }, argv)

beforeAll(async () => {
  const db = await createTestDatabase("cli-users-tag")
  const redis = createTestPrefix("cli-users-tag")
  sandbox = await startSandbox()
  const dir = await mkdtemp(join(tmpdir(), "bf-cli-users-tag-"))
  env = {
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    REDIS_PREFIX: redis.prefix,
    BOTFLEET_SECRET_KEY: Buffer.alloc(32, 7).toString("base64"),
    TELEGRAM_API_ROOT: sandbox.apiRoot,
    DATA_DIR: dir,
    LOG_LEVEL: "warning"
  }
  cleanup = async () => {
    await sandbox.close()
    await redis.cleanup()
    await db.drop()
    await rm(dir, { recursive: true, force: true })
  }
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
