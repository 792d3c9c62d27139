import { execFile } from "node:child_process"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { createTestDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"
import { captureCli } from "./support.js"

/*
 * `botfleet bots` and `botfleet status` end to end in production mode: Redis (log, inboxes),
 * Postgres (fleet directory, projections), the sandbox standing in for Telegram's getMe.
 */

let env: Record<string, string>
let log: EventLogService
let sandbox: Sandbox
let dir: string
let token: string
let cleanup: () => Promise<void>

const cli = (extraEnv: Record<string, string>, ...argv: Array<string>) => captureCli({ ...env, ...extraEnv }, argv)

beforeAll(async () => {
  const db = await createTestDatabase("cli-bots")
  const redis = createTestPrefix("cli-bots")
  sandbox = await startSandbox()
  token = sandbox.world.createBot({ username: "shop_bot" }).token
  dir = await mkdtemp(join(tmpdir(), "bf-cli-bots-"))
  env = {
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    REDIS_PREFIX: redis.prefix,
    BOTFLEET_SECRET_KEY: Buffer.alloc(32, 7).toString("base64"),
    TELEGRAM_API_ROOT: sandbox.apiRoot,
    DATA_DIR: dir,
    LOG_LEVEL: "warning"
  }
  log = await Effect.runPromise(makeRedisEventLog({ url: redis.url, prefix: redis.prefix }))
  cleanup = async () => {
    await Effect.runPromise(log.close)
    await sandbox.close()
    await redis.cleanup()
    await db.drop()
    await rm(dir, { recursive: true, force: true })
  }
})
afterAll(async () => {
  await cleanup()
})

describe("botfleet bots", () => {
  it("adds a bot whose token getMe accepts, sealed, never echoed; lists it", async () => {
    const added = await cli({ BOT_TOKEN: token }, "bots", "add", "shop", "--owner", "alice", "--json")
    expect(added.err).toBe("")
    expect(added.code).toBe(0)
    expect(JSON.parse(added.out)).toMatchObject({ botId: "shop", registered: true, username: "shop_bot", mode: "polling" })
    expect(added.out + added.err).not.toContain(token)

    const events = await Effect.runPromise(log.readStream("shop"))
    expect(events.map((e) => e.type)).toEqual(["BotRegistered"])
    expect(JSON.stringify(events)).not.toContain(token)
    expect(events[0]!.data).toMatchObject({ ownerId: "alice", name: "shop_bot", mode: "polling" })

    const list = await cli({}, "bots", "list", "--json")
    expect(list.code).toBe(0)
    expect(JSON.parse(list.out)).toEqual([
      { botId: "shop", state: "registered", version: 1, name: "shop_bot", mode: "polling", node: null, crashes: 0, lastError: null, inboxLag: 0, inListedFleet: true, ai: null }
    ])
    const table = await cli({}, "bots", "list")
    expect(table.out).toMatch(/shop\s+@shop_bot\s+registered\s+1\s+polling/)
  })

  it("reads the token from stdin in the real command (bin/botfleet.js), never printing it", async () => {
    const piped = sandbox.world.createBot({ username: "piped_bot" }).token
    const bin = fileURLToPath(new URL("../../bin/botfleet.js", import.meta.url))
    const { code, out } = await new Promise<{ code: number; out: string }>((resolve) => {
      const child = execFile(process.execPath, [bin, "bots", "add", "piped", "--owner", "carol"], { env: { ...process.env, ...env, BOT_TOKEN: "" }, timeout: 60_000 }, (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code ?? 1) : 0, out: stdout + stderr })
      )
      child.stdin!.end(piped + "\n")
    })
    expect(out).not.toContain(piped)
    expect(code).toBe(0)
    expect(out).toContain("bot piped added (Telegram @piped_bot")
    expect((await Effect.runPromise(log.readStream("piped")))[0]!.data).toMatchObject({ _tag: "BotRegistered", ownerId: "carol" })
    // out of the way of the assertions on the fleet below
    expect((await cli({}, "bots", "remove", "piped")).code).toBe(0)
  }, 60_000)

  it("refuses an owner id outside the safe alphabet as a usage error, before asking for the token, recording nothing", async () => {
    for (const owner of ["", "ownerC,ownerB", "owner B", "x".repeat(65)]) {
      const refused = await cli({ BOT_TOKEN: token }, "bots", "add", "badowner", "--owner", owner)
      expect({ owner, code: refused.code }).toEqual({ owner, code: 2 })
      expect(refused.err).toContain("--owner: owner id")
    }
    // no token at all: the owner id is refused first
    expect((await cli({ BOT_TOKEN: "" }, "bots", "add", "badowner", "--owner", "a,b")).err).toContain("has a character outside")
    expect(await Effect.runPromise(log.streamVersion("badowner"))).toBe(0)
  }, 60_000)

  it("refuses an existing bot id and a token Telegram rejects, with exit 1 and nothing recorded", async () => {
    const again = await cli({ BOT_TOKEN: token }, "bots", "add", "shop", "--owner", "bob")
    expect(again.code).toBe(1)
    expect(again.err).toContain("bot shop already exists")

    const bad = "999999:AAbadbadbadbadbadbadbadbadbadbadbad"
    const refused = await cli({ BOT_TOKEN: bad }, "bots", "add", "other", "--owner", "bob")
    expect(refused.code).toBe(1)
    expect(refused.out + refused.err).not.toContain(bad)
    expect(await Effect.runPromise(log.streamVersion("other"))).toBe(0)
    expect(JSON.parse((await cli({}, "bots", "list", "--json")).out)).toHaveLength(1)

    const usage = await cli({ BOT_TOKEN: token }, "bots", "add", "other")
    expect(usage.code).toBe(2)
    expect(usage.err).toContain("--owner")
  })

  it("says what shape a token must have when it has not, and leaves the real check to getMe (short test tokens pass)", async () => {
    const shapeless = await cli({ BOT_TOKEN: "my-bot-token" }, "bots", "add", "tiny", "--owner", "dave")
    expect(shapeless.code).toBe(1)
    expect(shapeless.err).toContain("is not a Bot API token: expected <digits>:<letters, digits, '_' or '-'>")
    expect(shapeless.out + shapeless.err).not.toContain("my-bot-token")
    expect(await Effect.runPromise(log.streamVersion("tiny"))).toBe(0)

    const short = sandbox.world.createBot({ username: "tiny_bot", token: "4242:t" }).token
    const added = await cli({ BOT_TOKEN: short }, "bots", "add", "tiny", "--owner", "dave", "--json")
    expect(added.err).toBe("")
    expect(JSON.parse(added.out)).toMatchObject({ botId: "tiny", registered: true, username: "tiny_bot" })
    // out of the way of the assertions on the fleet below
    expect((await cli({}, "bots", "remove", "tiny")).code).toBe(0)
  })

  it("configures with --set (nested paths) and --file as merge patches, checked against the kind's schema", async () => {
    const set = await cli({}, "bots", "configure", "shop", "--set", "greeting=hello", "--set", "personality.tone=pirate", "--json")
    expect(set.err).toBe("")
    expect(JSON.parse(set.out)).toEqual({ botId: "shop", events: ["BotConfigChanged"], version: 2 })
    const file = join(dir, "patch.json")
    await writeFile(file, JSON.stringify({ greeting: null, keywords: [{ match: "price", reply: "Ten coins" }] }))
    expect((await cli({}, "bots", "configure", "shop", "--file", file)).code).toBe(0)
    const state = JSON.parse((await cli({}, "inspect", "shop")).out)
    expect(state.state.config).toEqual({ personality: { tone: "pirate" }, keywords: [{ match: "price", reply: "Ten coins" }] })
    expect((await cli({}, "bots", "configure", "shop")).code).toBe(2)
    expect((await cli({}, "bots", "configure", "nobody", "--set", "a=1")).code).toBe(1)
  })

  it("refuses a configuration that fails the schema with every path and reason, exit 1, nothing recorded", async () => {
    const before = await Effect.runPromise(log.readStream("shop"))
    const bad = await cli({}, "bots", "configure", "shop", "--set", "personality.tone=pirat", "--set", 'keywords=[{"mach":"hi","reply":"yo"}]', "--set", "greting=hi")
    expect(bad.code).toBe(1)
    expect(bad.out).toBe("")
    expect(bad.err).toContain("nothing was recorded")
    expect(bad.err).toMatch(/personality\.tone: Expected "plain" \| "friendly" \| "formal" \| "pirate", actual "pirat"/)
    expect(bad.err).toContain("keywords[0].match: is missing")
    expect(bad.err).toContain("keywords[0].mach: is not a setting of this bot kind (a typo?)")
    expect(bad.err).toContain("greting: is not a setting of this bot kind (a typo?)")
    const reserved = await cli({}, "bots", "configure", "shop", "--set", "commands.start=hi")
    expect(reserved.code).toBe(1)
    expect(reserved.err).toContain("commands.start: start and help are built in")
    // conflicting paths are a usage error
    expect((await cli({}, "bots", "configure", "shop", "--set", "personality=1", "--set", "personality.tone=formal")).code).toBe(2)
    expect(await Effect.runPromise(log.readStream("shop"))).toEqual(before)

    // --show: as recorded, and as the built-in kind runs it (defaults filled in)
    const shown = await cli({}, "bots", "configure", "shop", "--show", "--json")
    expect(shown.code).toBe(0)
    expect(JSON.parse(shown.out)).toMatchObject({
      botId: "shop",
      kind: "builtin",
      version: 3,
      checked: true,
      config: { personality: { tone: "pirate" } },
      effective: { greeting: "Hello, {name}!", fallback: null, personality: { name: null, tone: "pirate" }, keywords: [{ match: "price", reply: "Ten coins" }] }
    })
    expect((await cli({}, "bots", "configure", "shop", "--show")).out).toContain('"tone": "pirate"')
    expect((await cli({}, "bots", "configure", "shop", "--show", "--set", "a=1")).code).toBe(2)
  })

  it("asks the node that holds the bot's lease; a node that does not answer is named, and nothing is recorded", async () => {
    const lease = (await Effect.runPromise(log.acquireLease("shop", "node-7", 30_000)))!
    try {
      const res = await cli({}, "bots", "configure", "shop", "--set", "fallback=Later", "--wait", "300")
      expect(res.code).toBe(1)
      expect(res.err).toContain("runs on node node-7, which did not confirm the command within 300 ms")
      const row = JSON.parse((await cli({}, "bots", "list", "--json")).out)[0]
      expect(row).toMatchObject({ node: "node-7", version: 3 })
    } finally {
      await Effect.runPromise(log.releaseLease(lease))
    }
  })

  it("stops a bot recorded as running on a dead node, starts (relists) it, removes it for good", async () => {
    // a node started the bot, then died: its lease is gone, its stream still says running
    const lease = (await Effect.runPromise(log.acquireLease("shop", "node-dead", 30_000)))!
    await Effect.runPromise(
      log.append({ botId: "shop", expectedVersion: 3, fence: lease.fence, events: [{ data: { _tag: "BotStarted", nodeId: "node-dead", fence: lease.fence }, occurredAt: new Date().toISOString(), correlationId: "c", actor: "node:node-dead" }] })
    )
    await Effect.runPromise(log.releaseLease(lease))

    const stop = await cli({}, "bots", "stop", "shop", "--json")
    expect(stop.err).toBe("")
    expect(JSON.parse(stop.out)).toEqual({ botId: "shop", events: ["BotStopped"], version: 5 })
    expect(JSON.parse((await cli({}, "bots", "list", "--json")).out)).toEqual([])

    const start = await cli({}, "bots", "start", "shop")
    expect(start.code).toBe(0)
    expect(JSON.parse((await cli({}, "bots", "list", "--json")).out)[0]).toMatchObject({ botId: "shop", state: "stopped", inListedFleet: true })

    const removed = await cli({}, "bots", "remove", "shop", "--reason", "closed shop", "--json")
    expect(JSON.parse(removed.out)).toEqual({ botId: "shop", events: ["BotRemoved"], version: 6 })
    expect(JSON.parse((await cli({}, "bots", "list", "--json")).out)).toEqual([])
    const restart = await cli({}, "bots", "start", "shop")
    expect(restart.code).toBe(1)
    expect(restart.err).toContain("removed")
  })
})

describe("botfleet dlq retry (Redis)", () => {
  it("puts the dead letter back among the pending entries of the group that failed on it only, and removes it from the list", async () => {
    const p = log.partitionOf("shop")
    const readAll = (group: string) => Effect.runPromise(log.readGroup({ partition: p, group, consumer: "c1", count: 1_000 }))
    const ackAll = (group: string, ds: ReadonlyArray<{ position: string }>) => Effect.runPromise(log.ack(p, group, ds.map((d) => d.position)))
    await Effect.runPromise(log.ensureGroup(p, "retry-test", "start"))
    await Effect.runPromise(log.ensureGroup(p, "bystander", "start"))
    const [first, ...rest] = await readAll("retry-test")
    await Effect.runPromise(log.deadLetter({ group: "retry-test", delivery: first!, reason: "test: poison" }))
    await ackAll("retry-test", rest)
    await ackAll("bystander", await readAll("bystander"))
    const [dead] = JSON.parse((await cli({}, "dlq", "list", "--json")).out) as Array<{ partition: number; id: string }>
    expect(dead).toMatchObject({ partition: p })

    const res = await cli({}, "dlq", "retry", String(p), "--all")
    expect(res.err).toBe("")
    expect(res.code).toBe(0)
    expect(res.out).toContain("retried 1 dead-letter entry")
    expect(JSON.parse((await cli({}, "dlq", "list", "--json")).out)).toEqual([])
    expect((await cli({}, "dlq", "retry", String(p), dead!.id)).code).toBe(1)

    // the group that had handled it does not see it again; the one that failed gets it back, same position
    expect(await readAll("bystander")).toEqual([])
    expect(await readAll("retry-test")).toEqual([])
    const again = await Effect.runPromise(log.reclaim({ partition: p, group: "retry-test", consumer: "c2", minIdleMs: 1_000, count: 10 }))
    expect(again.deliveries.map((d) => [d.position, d.raw])).toEqual([[first!.position, first!.raw]])
  })
})

describe("botfleet bots configure: a model API key", () => {
  it("is recorded sealed, never in clear, and the config is checked like any other", async () => {
    const aiToken = sandbox.world.createBot({ username: "sage_cli_bot" }).token
    expect((await cli({ BOT_TOKEN: aiToken }, "bots", "add", "sage", "--owner", "erin")).code).toBe(0)
    const clear = "sk-test-0123456789abcdef"
    const res = await cli({}, "bots", "configure", "sage", "--set", "ai.model=llama3.2", "--set", "ai.baseURL=http://127.0.0.1:11434/v1", "--set", `ai.apiKey=${clear}`, "--json")
    expect(res.err).toBe("")
    expect(res.out).not.toContain(clear)
    const stream = JSON.stringify(await Effect.runPromise(log.readStream("sage")))
    expect(stream).not.toContain(clear)
    expect(stream).toMatch(/"apiKey":"sealed:v1:[A-Za-z0-9_-]+"/)
    const shown = await cli({}, "bots", "configure", "sage", "--show")
    expect(shown.out).not.toContain(clear)
    const bad = await cli({}, "bots", "configure", "sage", "--set", "ai.timeoutMs=5")
    expect(bad.code).toBe(1)
    expect(bad.err).toContain("ai.timeoutMs: must be from 100 to 120000")
    expect((await cli({}, "bots", "remove", "sage")).code).toBe(0)
  })
})
