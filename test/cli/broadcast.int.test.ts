import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makePgSql } from "../../src/db/pgSql.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { productionCliEnv } from "./support.js"
import type { ProductionCliEnv } from "./support.js"

/* `botfleet broadcast` and its line in `status`, in production mode (Redis log, Postgres). */

let sandbox: Sandbox
let cli: ProductionCliEnv["cli"]
let cleanup: () => Promise<void>
let dbUrl: string

beforeAll(async () => {
  const setting = await productionCliEnv("cli-broadcast")
  ;({ sandbox, cli, cleanup, dbUrl } = setting)
})
afterAll(async () => {
  await cleanup()
})

describe("botfleet broadcast", () => {
  it("creates, lists, pauses, resumes and cancels; refuses bad input with nothing created; status shows the active ones", async () => {
    const token = sandbox.world.createBot({ username: "promo_bot" }).token
    expect((await cli({ BOT_TOKEN: token }, "bots", "add", "promo", "--owner", "alice")).code).toBe(0)
    const sql = makePgSql(dbUrl, { max: 1 })
    try {
      await sql.query(
        "INSERT INTO bot_users (bot_id, user_id, owner_id, first_name, language_code, first_seen_at, last_seen_at, blocked_at) VALUES ('promo', 1, 'alice', 'A', 'de', now(), now(), NULL), ('promo', 2, 'alice', 'B', 'de', now(), now(), now()), ('promo', 3, 'alice', 'C', 'en', now(), now(), NULL)"
      )
    } finally {
      await sql.close()
    }
    expect((await cli({}, "broadcast", "create", "promo", "--segment", "lang=de", "--text", "Hi")).code).toBe(2)
    expect((await cli({}, "broadcast", "create", "promo", "--segment", "all", "--text", "x".repeat(4097))).code).toBe(2)
    expect((await cli({}, "broadcast", "create", "promo", "--segment", "all", "--text", "Hi", "--at", "tomorrow")).code).toBe(2)
    const nobody = await cli({}, "broadcast", "create", "ghost", "--segment", "all", "--text", "Hi")
    expect(nobody.code).toBe(1)
    expect(nobody.err).toContain("bot ghost is not registered")
    expect(JSON.parse((await cli({}, "broadcast", "list", "--json")).out)).toEqual([])

    const created = await cli({}, "broadcast", "create", "promo", "--segment", "language=de", "--text", "Sale!", "--at", "2030-01-01T09:00:00Z")
    expect(created.err).toBe("")
    expect(created.out).toBe("broadcast 1 created for bot promo: 1 recipients (1 who blocked the bot left out), not before 2030-01-01T09:00:00.000Z")
    expect((await cli({}, "broadcast", "pause", "1")).out).toBe("broadcast 1 is paused")
    const again = await cli({}, "broadcast", "pause", "1")
    expect(again.code).toBe(1)
    expect(again.err).toContain("it is paused, so it cannot pause; nothing was changed")
    expect((await cli({}, "broadcast", "resume", "1")).out).toBe("broadcast 1 is running")
    expect((await cli({}, "broadcast", "cancel", "x")).code).toBe(2)

    const status = await cli({}, "status")
    expect(status.out).toContain("broadcast 1 (bot promo) running: 0 sent, 0 failed, 1 blocked, 1 pending of 1")
    const list = JSON.parse((await cli({}, "broadcast", "list", "promo", "--json")).out)
    expect(list).toMatchObject([{ broadcastId: 1, botId: "promo", ownerId: "alice", state: "running", total: 1, skippedBlocked: 1, pending: 1 }])
    expect((await cli({}, "broadcast", "cancel", "1")).out).toBe("broadcast 1 is cancelled")
    expect(JSON.parse((await cli({}, "status", "--json")).out).broadcasts).toEqual([])
  }, 120_000)
})
