import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makePgSql } from "../../src/db/pgSql.js"
import type { SqlClient } from "../../src/db/sql.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import { makeProjector } from "../../src/projections/projector.js"
import { seedDemoFleet } from "../../src/runtime/demoFleet.js"
import { makeFleetDirectory } from "../../src/runtime/fleetDirectory.js"
import { makeTokenVault } from "../../src/telegram/tokenVault.js"
import { appendFacts, registered } from "../projections/fixtures.js"
import { createTestDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"
import { captureCli } from "./support.js"

/*
 * One name for a bot everywhere: every command that takes a bot takes its id (`demo-sunny`) or
 * its @username (`@sunny_demo_bot`, also without the @, in any case), and `bots list` shows both.
 * Production mode: Redis for the log, Postgres for the projections the names are looked up in.
 */

let env: Record<string, string>
let log: EventLogService
let sql: SqlClient
let dir: string
let cleanup: () => Promise<void>

const cli = (...argv: Array<string>) => captureCli(env, argv)
const SUNNY = ["demo-sunny", "@sunny_demo_bot", "sunny_demo_bot", "@Sunny_Demo_Bot"]

beforeAll(async () => {
  const db = await createTestDatabase("cli-names")
  const redis = createTestPrefix("cli-names")
  dir = await mkdtemp(join(tmpdir(), "bf-cli-names-"))
  const key = Buffer.alloc(32, 7)
  env = { DATABASE_URL: db.url, REDIS_URL: redis.url, REDIS_PREFIX: redis.prefix, BOTFLEET_SECRET_KEY: key.toString("base64"), DATA_DIR: dir, LOG_LEVEL: "warning" }
  log = await Effect.runPromise(makeRedisEventLog({ url: redis.url, prefix: redis.prefix }))
  sql = makePgSql(db.url)
  cleanup = async () => {
    await Effect.runPromise(log.close)
    await sql.close()
    await redis.cleanup()
    await db.drop()
    await rm(dir, { recursive: true, force: true })
  }
  expect((await cli("migrate")).code).toBe(0)
  await Effect.runPromise(seedDemoFleet({ log, vault: makeTokenVault(key), directory: makeFleetDirectory(sql), nodeId: "test-node" }))
  // a bot of its own named by its username, and two that share a name
  await appendFacts(log, "shop", [registered("alice", "shop_bot")])
  await appendFacts(log, "twin-a", [registered("alice", "twin_bot")])
  await appendFacts(log, "twin-b", [registered("bob", "twin_bot")])
  for (let p = 0; p < log.partitions; p++) {
    const projector = makeProjector({ log, sql, partition: p, blockMs: 0 })
    for (;;) if ((await Effect.runPromise(projector.step)).caughtUp) break
  }
}, 60_000)
afterAll(async () => {
  await cleanup?.()
})

describe("a bot named by its id or its @username", () => {
  it("shows the id and the @username side by side in bots list", async () => {
    const list = await cli("bots", "list")
    expect(list.code).toBe(0)
    const row = list.out.split("\n").find((l) => l.startsWith("demo-sunny"))
    expect(row).toMatch(/^demo-sunny\s+@sunny_demo_bot\s/)
  })

  it("reads the same bot by any of its names: inspect, tail, events --export, replay, configure --show, dlq list, broadcast list", async () => {
    for (const ref of SUNNY) {
      const inspected = await cli("inspect", ref)
      expect([inspected.code, inspected.err]).toEqual([0, ""])
      expect(JSON.parse(inspected.out)).toMatchObject({ botId: "demo-sunny", state: { name: "sunny_demo_bot", mode: "sandbox" } })
      const tail = await cli("tail", ref, "--no-follow", "--json")
      expect(tail.code).toBe(0)
      expect(tail.out.split("\n").map((l) => (JSON.parse(l) as { botId: string }).botId)).toEqual(["demo-sunny"])
      expect((await cli("replay", ref)).code).toBe(0)
      const shown = await cli("bots", "configure", ref, "--show")
      expect(shown.out).toContain("bot demo-sunny (kind builtin")
      expect((await cli("dlq", "list", "--bot", ref)).out).toBe("no inbox dead letters for bot demo-sunny")
      expect((await cli("broadcast", "list", ref)).code).toBe(0)
    }
    const file = join(dir, "sunny.ndjson")
    expect((await cli("events", "@sunny_demo_bot", "--export", file)).out).toBe(`exported 1 events of bot demo-sunny to ${file}`)
    expect(await readFile(file, "utf8")).toContain('"botId":"demo-sunny"')
  })

  it("changes the same bot by its name: stop and start", async () => {
    const stopped = await cli("bots", "stop", "@sunny_demo_bot", "--json")
    expect([stopped.code, stopped.err]).toEqual([0, ""])
    // never started: nothing to record, but it is unlisted; and listed again by its other name
    expect(JSON.parse(stopped.out)).toMatchObject({ botId: "demo-sunny" })
    const listed = async () => (await sql.query<{ bot_id: string }>("SELECT bot_id FROM fleet_bots WHERE bot_id = 'demo-sunny'")).rows.length
    expect(await listed()).toBe(0)
    const started = await cli("bots", "start", "sunny_demo_bot", "--json")
    expect(JSON.parse(started.out)).toMatchObject({ botId: "demo-sunny", listed: true })
    expect(await listed()).toBe(1)
  })

  it("finds any bot by the name it was registered under, and says so when a name is ambiguous or unknown", async () => {
    const shop = await cli("inspect", "@shop_bot")
    expect(JSON.parse(shop.out)).toMatchObject({ botId: "shop", state: { name: "shop_bot" } })
    expect(JSON.parse((await cli("inspect", "shop_bot")).out)).toMatchObject({ botId: "shop" })
    const twin = await cli("inspect", "@twin_bot")
    expect(twin.code).toBe(2)
    expect(twin.err).toContain("several bots are named twin_bot (twin-a, twin-b): give the bot's id")
    const nobody = await cli("tail", "@nobody_bot", "--no-follow")
    expect(nobody.code).toBe(2)
    expect(nobody.err).toContain('no bot is named "@nobody_bot"')
    // an id no bot has is still an unknown bot, in the command's own words
    const unknown = await cli("inspect", "nobody")
    expect(unknown.code).toBe(1)
  })
})
