import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { captureCli } from "../cli/support.js"
import { registerOn, replies, startTestNode } from "./support.js"
import type { TestNode } from "./support.js"

/*
 * Issue 11 end to end, embedded mode (`npm start`): a legacy bot's telegraf-session-local files
 * imported with the CLI come alive in the running node. A legacy user is welcomed back by name, a
 * user who was mid-wizard finishes the wizard at the recorded step, the old bot's own data is
 * readable (ctx.legacy), the projections show it all, --verify agrees and replay is identical.
 */

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/legacy/e2e/${name}`, import.meta.url))
const BOT_MODULES = fileURLToPath(new URL("./fixtures/legacyBots.ts", import.meta.url))
const POLL = { timeout: 30_000 }

let dataDir: string
let running: TestNode | null = null
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "bf-legacy-e2e-"))
})
afterAll(async () => {
  await running?.stop()
  await rm(dataDir, { recursive: true, force: true })
})

describe("a legacy bot's data comes alive (embedded node)", () => {
  it("welcomes a legacy user back, finishes a wizard at its recorded step, reads ctx.legacy, projects and verifies", async () => {
    const env = { DATA_DIR: dataDir, BOT_MODULES }
    running = await startTestNode(env)
    let node = running.node
    const greeter = node.sandbox!.world.createBot({ username: "greeter_bot" })
    const shop = node.sandbox!.world.createBot({ username: "shop_bot" })
    await registerOn(node, { botId: "greeter", ownerId: "o1", name: "greeter_bot", kind: "builtin", mode: "sandbox", token: Redacted.make(greeter.token), config: {} })
    await registerOn(node, { botId: "shop", ownerId: "o1", name: "shop_bot", kind: "shop", mode: "sandbox", token: Redacted.make(shop.token), config: {} })
    await running.stop()
    running = null

    // the import, with the node stopped (PGlite is one process)
    const cli = (...argv: Array<string>) => captureCli({ ...env, LOG_LEVEL: "warning" }, argv)
    const imported = await cli("import", "greeter", fixture("greeter.json"))
    expect(imported.err).toBe("")
    expect(imported.code).toBe(0)
    expect((await cli("import", "shop", fixture("wizard.json"))).code).toBe(0)

    running = await startTestNode(env)
    node = running.node
    await Effect.runPromise(node.startBot("greeter"))
    await Effect.runPromise(node.startBot("shop"))
    const world = node.sandbox!.world

    // a legacy user: welcomed back by name, in their language
    world.say("greeter_bot", { userId: 502, firstName: "Анна", languageCode: "ru", text: "/start" })
    await expect.poll(() => replies(node, "greeter_bot", 502), POLL).toEqual(["С возвращением, Анна!"])
    // a stranger is greeted as one
    world.say("greeter_bot", { userId: 600, firstName: "New", text: "/start" })
    await expect.poll(() => replies(node, "greeter_bot", 600), POLL).toEqual(["Hello, New!"])

    // mid-wizard (step 3 of 3, size chosen before the move): the next answer completes it, with the old price list
    world.say("shop_bot", { userId: 501, firstName: "Bo", text: "Baker Street 1" })
    await expect.poll(() => replies(node, "shop_bot", 501), POLL).toEqual(["Order 4: large to Baker Street 1, 12 EUR"])
    // the wizard is over: a new order starts at its first step
    world.say("shop_bot", { userId: 501, firstName: "Bo", text: "/order" })
    await expect.poll(() => replies(node, "shop_bot", 501), POLL).toEqual(["Order 4: large to Baker Street 1, 12 EUR", "Which size?"])

    // the projections show the imported users, chats, sessions and records
    const sql = node.stores.sql
    const q = async (text: string) => (await sql.query<Record<string, unknown>>(text)).rows
    await expect.poll(() => q("SELECT first_name, language_code FROM bot_users WHERE bot_id = 'greeter' AND user_id = 502"), POLL).toEqual([
      { first_name: "Анна", language_code: "ru" }
    ])
    await expect
      .poll(async () => (await q("SELECT data FROM bot_sessions WHERE bot_id = 'shop' AND session_key = '501:501'"))[0]?.["data"], POLL)
      .toMatchObject({ orders: 4, __scenes: { current: "order", cursor: 1 } })
    expect(await q("SELECT session_key FROM bot_sessions WHERE bot_id = 'shop' ORDER BY 1")).toEqual([{ session_key: "501:501" }, { session_key: "503:-100777" }])
    expect(await q("SELECT chat_id::text AS id, chat_type FROM chats WHERE bot_id = 'shop' ORDER BY chat_id")).toEqual([
      { id: "-100777", chat_type: "unknown" },
      { id: "501", chat_type: "private" }
    ])
    expect(await q("SELECT collection, record_key, record FROM imported_records WHERE bot_id = 'greeter' AND collection = 'data.feedback'")).toEqual([
      { collection: "data.feedback", record_key: "0", record: { from: 502, text: "Лучший бот!" } }
    ])
    await running.stop()
    running = null

    // the files against the state and the projections; replay re-derives every decision
    const verified = await cli("import", "greeter", fixture("greeter.json"), "--verify")
    expect(verified.out).toContain("verified: all 3 records")
    expect(verified.code).toBe(0)
    expect((await cli("import", "shop", fixture("wizard.json"), "--verify")).code).toBe(0)
    const replay = await cli("replay", "shop")
    expect(replay.out).toContain("identical")
    expect(replay.code).toBe(0)
  }, 240_000)
})
