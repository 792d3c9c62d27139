import { randomBytes } from "node:crypto"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { fleetEnv, replies, say, startTestNode } from "../runtime/support.js"
import type { TestNode } from "../runtime/support.js"
import { createTestDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"
import { captureCli } from "./support.js"

/*
 * `botfleet bots configure | stop | start | remove` while a real node (production mode: Redis,
 * Postgres, actors on worker threads) runs the bot: the CLI asks that node over the control
 * channel and its actor records the change; nothing is appended by the CLI itself.
 */

const redis = createTestPrefix("cli-control")
let db: { url: string; drop: () => Promise<void> }
let dir: string
let env: Record<string, string>
let running: TestNode

const cli = (...argv: Array<string>) => captureCli(env, argv)
const stateOf = async (botId: string) => (await Effect.runPromise(running.node.supervisor.status(botId)))?.state

beforeAll(async () => {
  db = await createTestDatabase("cli-control")
  dir = await mkdtemp(join(tmpdir(), "bf-cli-control-"))
  env = fleetEnv({ db, redis, secretKey: randomBytes(32).toString("base64"), dataDir: dir }, { WORKER_THREADS: "1", LOG_LEVEL: "warning" })
  running = await startTestNode(env)
  for (let i = 0; i < 300 && (await stateOf("demo-clerk")) !== "running"; i++) await new Promise((r) => setTimeout(r, 100))
}, 60_000)
afterAll(async () => {
  await running?.stop()
  await db.drop()
  await redis.cleanup()
  await rm(dir, { recursive: true, force: true })
})

describe("bots commands reach the node that runs the bot", () => {
  it("runs its actors on worker threads", () => {
    expect(running.node.actorThreads).toBe(1)
  })

  it("configure: the running actor records BotConfigChanged and applies it without a restart", async () => {
    const res = await cli("bots", "configure", "demo-clerk", "--set", "fallback=Yours faithfully", "--json")
    expect(res.err).toBe("")
    expect(res.code).toBe(0)
    const applied = JSON.parse(res.out)
    expect(applied).toMatchObject({ botId: "demo-clerk", events: ["BotConfigChanged"], node: running.node.config.nodeId })
    const status = await Effect.runPromise(running.node.supervisor.send("demo-clerk", { _tag: "Status" }))
    expect(status.config).toMatchObject({ fallback: "Yours faithfully" })
    expect(status.version).toBe(applied.version)
    expect(await stateOf("demo-clerk")).toBe("running")
    expect((await Effect.runPromise(running.node.supervisor.status("demo-clerk")))?.restarts).toBe(0)
  })

  it("configure: a patch that is not an object, or breaks the schema, is refused before the node is asked, with nothing recorded", async () => {
    const file = join(dir, "patch.json")
    await writeFile(file, "[1, 2]")
    const before = (await Effect.runPromise(running.node.stores.log.streamVersion("demo-clerk")))
    const res = await cli("bots", "configure", "demo-clerk", "--file", file)
    expect(res.code).toBe(1)
    expect(res.err).toContain("(the patch): a config patch must be a JSON object")
    const tone = await cli("bots", "configure", "demo-clerk", "--set", "personality.tone=shouty")
    expect(tone.code).toBe(1)
    expect(tone.err).toContain("personality.tone: Expected")
    expect(await Effect.runPromise(running.node.stores.log.streamVersion("demo-clerk"))).toBe(before)
  })

  it("stop: the node drains the bot and stops supervising it; start: the node runs it again at once", async () => {
    const stop = await cli("bots", "stop", "demo-clerk", "--reason", "maintenance", "--json")
    expect(stop.code).toBe(0)
    expect(JSON.parse(stop.out)).toMatchObject({ events: ["BotStopped"], node: running.node.config.nodeId })
    await expect.poll(() => stateOf("demo-clerk"), { timeout: 10_000 }).toBe("stopped")
    const lease = await Effect.runPromise(running.node.stores.log.readLease("demo-clerk"))
    expect(lease).toBeNull()
    const listed = JSON.parse((await cli("bots", "list", "--json")).out) as Array<{ botId: string }>
    expect(listed.map((r) => r.botId)).not.toContain("demo-clerk")

    const start = await cli("bots", "start", "demo-clerk", "--json")
    expect(start.code).toBe(0)
    expect(JSON.parse(start.out)).toMatchObject({ listed: true, nodesTold: 1 })
    await expect.poll(() => stateOf("demo-clerk"), { timeout: 20_000 }).toBe("running")
  })

  it("remove: the node records BotRemoved and the bot stays down", async () => {
    await expect.poll(() => stateOf("demo-sunny"), { timeout: 20_000 }).toBe("running")
    const res = await cli("bots", "remove", "demo-sunny", "--reason", "retired", "--json")
    expect(res.err).toBe("")
    expect(res.code).toBe(0)
    expect(JSON.parse(res.out)).toMatchObject({ events: ["BotRemoved"] })
    await expect.poll(() => stateOf("demo-sunny"), { timeout: 10_000 }).toBe("stopped")
    const types = (await Effect.runPromise(running.node.stores.log.readStream("demo-sunny"))).map((e) => e.type)
    // removed, then drained: a removed bot records no BotStopped after it
    expect(types[types.length - 1]).toBe("BotRemoved")
    expect(types.filter((t) => t === "BotRemoved")).toHaveLength(1)
    const start = await cli("bots", "start", "demo-sunny")
    expect(start.code).toBe(1)
    expect(start.err).toContain("is removed")
  })

  it("a revoked token stops the bot with the reason (no restart loop); rotate-token records the new one and the bot runs again", async () => {
    const world = running.node.sandbox!.world
    const newToken = world.rotateToken("clerk_demo_bot") // /revoke in @BotFather: the old token now answers 401
    await fetch(`${running.node.sandbox!.apiRoot}/sandbox/clerk_demo_bot/say`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ userId: 61, firstName: "Di", text: "/hours" })
    })
    await expect.poll(() => Effect.runPromise(running.node.supervisor.status("demo-clerk")), { timeout: 20_000 }).toMatchObject({ state: "stopped" })
    const stopped = (await Effect.runPromise(running.node.stores.log.readStream("demo-clerk"))).at(-1)?.data
    expect(stopped).toMatchObject({ _tag: "BotStopped", reason: expect.stringContaining("401") })
    const before = await Effect.runPromise(running.node.stores.log.streamVersion("demo-clerk"))
    await new Promise((r) => setTimeout(r, 1500))
    expect(await Effect.runPromise(running.node.stores.log.streamVersion("demo-clerk"))).toBe(before) // no restart loop

    // a token of another Telegram bot is refused, with nothing recorded
    const other = world.createBot({ username: "someone_else_bot" }).token
    const wrong = await captureCli({ ...env, BOT_TOKEN: other }, ["bots", "rotate-token", "demo-clerk", "--api-root", running.node.sandbox!.apiRoot])
    expect(wrong.code).toBe(1)
    expect(wrong.err).toContain("is for Telegram bot")
    expect(wrong.out + wrong.err).not.toContain(other)

    const res = await captureCli({ ...env, BOT_TOKEN: newToken }, ["bots", "rotate-token", "demo-clerk", "--api-root", running.node.sandbox!.apiRoot, "--json"])
    expect(res.err).toBe("")
    expect(res.out).not.toContain(newToken)
    expect(JSON.parse(res.out)).toMatchObject({ events: ["BotTokenRotated"], nodesTold: 1 })
    await expect.poll(() => stateOf("demo-clerk"), { timeout: 20_000 }).toBe("running")
    await say(running.node, "clerk_demo_bot", { userId: 62, firstName: "Ed", text: "/hours" })
    await expect.poll(() => replies(running.node, "clerk_demo_bot", 62), { timeout: 20_000 }).toHaveLength(1)
  }, 60_000)

  it("stop of a passivated bot (no lease held): the CLI records it and every node stops supervising it, so no update wakes it", async () => {
    await running.stop()
    running = await startTestNode({ ...env, PASSIVATE_AFTER_MS: "1000" })
    // the whole status is compared, so a failure shows the bot's last error
    await expect.poll(() => Effect.runPromise(running.node.supervisor.status("demo-barnacle")), { timeout: 30_000 }).toMatchObject({ state: "passivated" })
    const res = await cli("bots", "stop", "demo-barnacle", "--json")
    expect(res.code).toBe(0)
    expect(JSON.parse(res.out).node).toBeUndefined()
    await expect.poll(() => stateOf("demo-barnacle"), { timeout: 10_000 }).toBe("stopped")
    // a user writes: the node no longer takes the bot's updates, and nothing wakes it
    const say = await fetch(`${running.node.sandbox!.apiRoot}/sandbox/barnacle_demo_bot/say`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ userId: 77, text: "ahoy" })
    })
    expect(say.ok).toBe(true)
    await new Promise((r) => setTimeout(r, 2000))
    expect(await stateOf("demo-barnacle")).toBe("stopped")
    const types = (await Effect.runPromise(running.node.stores.log.readStream("demo-barnacle"))).map((e) => e.type)
    expect(types[types.length - 1]).toBe("BotStopped")
    expect(types).not.toContain("UpdateReceived")
  }, 60_000)

})
