import { randomBytes } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makePgSql } from "../../src/db/pgSql.js"
import type { SqlClient } from "../../src/db/sql.js"
import { partitionOf, redisKeys } from "../../src/events/partition.js"
import { registry } from "../../src/events/schema/registry.js"
import type { EventTypeSpec } from "../../src/events/schema/registry.js"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { captureCli } from "../cli/support.js"
import { createTestDatabase } from "../support/db.js"
import { spawnNode, stopNode, until } from "../support/nodeFleet.js"
import type { NodeProcess } from "../support/nodeFleet.js"
import { createTestPrefix } from "../support/redis.js"
import { fleetEnv, startTestNode } from "./support.js"
import type { TestNode } from "./support.js"

/*
 * A rolling upgrade: version N+1 introduces BotStopped v2 (with an upcaster from v1). A node of
 * version N (a `botfleet run` process of this checkout) meets a bot whose newest event is a v2
 * BotStopped: it refuses the bot (no event appended, no state folded from a misread stream) and
 * leaves it to a newer node, which runs it on. The N+1 node is this test process with the event
 * registry extended as the next version's code would extend it (actors on the main thread, so they
 * read the same registry).
 */

const redis = createTestPrefix("rolling-upgrade")
let db: { url: string; drop: () => Promise<void> }
let dataDir: string
let telegram: Sandbox
let env: Record<string, string>
let sql: SqlClient
let newer: TestNode | null = null
let older: NodeProcess | null = null
const original = { ...registry.BotStopped }
const spec = registry.BotStopped as { -readonly [K in keyof EventTypeSpec]: EventTypeSpec[K] }

const becomeNextVersion = () => {
  spec.current = 2
  spec.upcasters = { 1: (old) => ({ ...old, drainedInMs: null }) }
}
const becomeThisVersion = () => Object.assign(spec, original)

beforeAll(async () => {
  db = await createTestDatabase("rolling_upgrade")
  dataDir = await mkdtemp(join(tmpdir(), "bf-upgrade-"))
  telegram = await startSandbox()
  env = fleetEnv(
    { db, redis, secretKey: randomBytes(32).toString("base64"), dataDir },
    { TELEGRAM_API_ROOT: telegram.apiRoot, LEASE_TTL_MS: "3000", LEASE_RENEW_MS: "500", WORKER_THREADS: "0" }
  )
  sql = makePgSql(db.url, { max: 1 })
}, 60_000)
afterAll(async () => {
  becomeThisVersion()
  await newer?.stop().catch(() => undefined)
  if (older) await stopNode(older, 20_000)
  await sql?.close()
  await telegram?.close()
  await db?.drop()
  await redis.cleanup()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
}, 60_000)

describe("a rolling upgrade", () => {
  it("a node of version N refuses a bot whose stream holds an event version it cannot read, and a newer node runs it", async () => {
    const tgBot = telegram.world.createBot({ username: "upgrade_shop_bot" })
    expect((await captureCli({ ...env, BOT_TOKEN: tgBot.token }, ["bots", "add", "upgrading", "--owner", "o1", "--mode", "polling"])).code).toBe(0)
    expect((await captureCli(env, ["bots", "configure", "upgrading", "--set", 'keywords=[{"match":"ping","reply":"pong"}]'])).code).toBe(0)
    const texts = () => telegram.world.messages("upgrade_shop_bot", 7).map((m) => m.text)

    // version N+1 runs the bot, then stops: its BotStopped is a v2 event
    becomeNextVersion()
    newer = await startTestNode({ ...env, NODE_ID: "node-next" })
    telegram.world.say("upgrade_shop_bot", { userId: 7, text: "ping" })
    await expect.poll(texts, { timeout: 30_000 }).toEqual(["pong"])
    await newer.stop()
    newer = null
    // the stream as stored, undecoded: its newest entry, and the schema version it was written with
    const client = new Redis(redis.url)
    const rawTail = async () => {
      const [entry] = await client.xrevrange(redisKeys(redis.prefix, partitionOf("upgrading", 16)).stream("upgrading"), "+", "-", "COUNT", 1)
      const [id, fields] = entry!
      const field = (name: string) => fields[fields.indexOf(name) + 1]
      return { id, type: field("type"), schemaVersion: field("schemaVersion") }
    }
    try {
      const streamBefore = await rawTail()
      expect(streamBefore).toMatchObject({ type: "BotStopped", schemaVersion: "2" })

      // version N alone (this checkout's code, BotStopped v1): it must not run the bot nor write to its stream
      becomeThisVersion()
      older = await spawnNode(env, "node-n")
      await until(
        "node-n refuses the bot",
        async () => (await sql.query("SELECT 1 FROM bot_refusals WHERE bot_id = 'upgrading' AND node_id = 'node-n'")).rowCount === 1,
        60_000,
        [older]
      )
      expect(older.lines.some((l) => String(l["message"]).includes("cannot read; left to a newer node"))).toBe(true)
      telegram.world.say("upgrade_shop_bot", { userId: 7, text: "ping" })
      await new Promise((r) => setTimeout(r, 3000))
      expect(await rawTail()).toEqual(streamBefore)
      expect(texts()).toEqual(["pong"])
      // the operator's CLI is of the new version (this one's would not read the bot's stream either)
      becomeNextVersion()
      const shown = await captureCli(env, ["status", "--json"])
      expect(shown.code, shown.err).toBe(0)
      const status = JSON.parse(shown.out) as { nodes: Array<{ nodeId: string; eventVersions: Record<string, number>; state: string }> }
      expect(status.nodes.find((n) => n.nodeId === "node-n")?.eventVersions["BotStopped"]).toBe(1)
      expect(status.nodes.find((n) => n.nodeId === "node-next")?.eventVersions["BotStopped"]).toBe(2)

      // version N+1 comes back: the bot is placed on it (node-n refused it), the waiting update is answered
      newer = await startTestNode({ ...env, NODE_ID: "node-next" })
      await expect.poll(texts, { timeout: 30_000 }).toEqual(["pong", "pong"])
      const events = await Effect.runPromise(newer.node.stores.log.readStream("upgrading"))
      expect(events.filter((e) => e.data._tag === "BotStarted").map((e) => (e.data as { nodeId: string }).nodeId)).toEqual(["node-next", "node-next"])
      expect(events.filter((e) => e.data._tag === "BotCrashed" || e.data._tag === "BotGaveUp")).toEqual([])
      // node-n is still up and still leaves the bot alone
      expect(older.exited).toBeNull()
    } finally {
      client.disconnect()
    }
  }, 240_000)
})
