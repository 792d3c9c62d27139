import { randomBytes } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir, userInfo } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makePgSql } from "../../src/db/pgSql.js"
import type { SqlClient } from "../../src/db/sql.js"
import { FLEET_STREAM } from "../../src/projections/mapping/fleet.js"
import { captureCli } from "../cli/support.js"
import { createTestDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"
import { fleetEnv, startTestNode } from "./support.js"
import type { TestNode } from "./support.js"

/*
 * `botfleet config set` on a production fleet of two real nodes (Redis + Postgres): a live setting
 * reaches every node over the control channel and what reads it, `botfleet config` shows each
 * node's value and source, the change is a fleet event the audit log shows (who, when, old, new),
 * and a setting that needs a restart or a bad value is refused with nothing changed or recorded.
 */

const redis = createTestPrefix("live-settings")
let db: { url: string; drop: () => Promise<void> }
let dataDir: string
let env: Record<string, string>
let sql: SqlClient
const nodes: Array<TestNode> = []

const cli = (...argv: Array<string>) => captureCli(env, argv)
const fleetVersion = () => Effect.runPromise(nodes[0]!.node.stores.log.streamVersion(FLEET_STREAM))

beforeAll(async () => {
  db = await createTestDatabase("live_settings")
  dataDir = await mkdtemp(join(tmpdir(), "bf-live-"))
  env = fleetEnv({ db, redis, secretKey: randomBytes(32).toString("base64"), dataDir }, { LOG_LEVEL: "warning", WORKER_THREADS: "1", ACTIVATIONS_PER_SECOND: "100" })
  nodes.push(await startTestNode({ ...env, NODE_ID: "node-a" }))
  nodes.push(await startTestNode({ ...env, NODE_ID: "node-b" }))
  sql = makePgSql(db.url)
}, 120_000)
afterAll(async () => {
  for (const n of nodes) await n.stop().catch(() => undefined)
  await sql?.close()
  await db.drop()
  await redis.cleanup()
  await rm(dataDir, { recursive: true, force: true })
})

describe("live node settings", () => {
  it("a change reaches every node without a restart and is in the audit log (who, when, old, new)", async () => {
    const set = await cli("config", "set", "ACTIVATIONS_PER_SECOND=50", "--json")
    expect(set.err).toBe("")
    expect(set.code).toBe(0)
    const result = JSON.parse(set.out)
    expect(result).toMatchObject({ setting: "ACTIVATIONS_PER_SECOND", value: "50", scope: "all", refused: [], missing: 0, fleetVersion: 1 })
    expect(result.nodes).toEqual([
      { nodeId: "node-a", name: "ACTIVATIONS_PER_SECOND", old: "100", value: "50", source: "live" },
      { nodeId: "node-b", name: "ACTIVATIONS_PER_SECOND", old: "100", value: "50", source: "live" }
    ])
    for (const n of nodes) expect(n.node.settings.current().activationsPerSecond).toBe(50)

    // every node answers with its values and where they come from
    const shown = JSON.parse((await cli("config", "--json")).out) as {
      settings: Array<{ name: string; value: string; source: string }>
      nodes: Array<{ nodeId: string; settings: Array<{ name: string; value: string; source: string; live: boolean }> }>
    }
    expect(shown.nodes.map((n) => n.nodeId)).toEqual(["node-a", "node-b"])
    for (const n of shown.nodes) {
      expect(n.settings.find((s) => s.name === "ACTIVATIONS_PER_SECOND")).toEqual({ name: "ACTIVATIONS_PER_SECOND", value: "50", source: "live", live: true })
      expect(n.settings.find((s) => s.name === "REDIS_PREFIX")).toMatchObject({ value: redis.prefix, source: "env", live: false })
      expect(n.settings.find((s) => s.name === "SNAPSHOT_EVERY")).toMatchObject({ value: "500", source: "default" })
    }
    expect(shown.settings.find((s) => s.name === "ACTIVATIONS_PER_SECOND")).toMatchObject({ value: "100", source: "env" })
    const table = (await cli("config")).out
    expect(table).toMatch(/ACTIVATIONS_PER_SECOND\s+100 \(env\)\s+yes\s+50 \(live\)\s+50 \(live\)/)

    // the nodes project the fleet event into the audit log
    await expect
      .poll(async () => (await sql.query("SELECT owner_id, actor, event_type, summary FROM audit_log WHERE bot_id = $1", [FLEET_STREAM])).rows, { timeout: 30_000 })
      .toEqual([
        {
          owner_id: "_fleet",
          actor: `ops:cli:${userInfo().username}`,
          event_type: "FleetSettingChanged",
          summary: {
            setting: "ACTIVATIONS_PER_SECOND",
            value: "50",
            scope: "all",
            nodes: [
              { nodeId: "node-a", old: "100", value: "50" },
              { nodeId: "node-b", old: "100", value: "50" }
            ]
          }
        }
      ])
    const when = (await sql.query<{ at: string }>("SELECT occurred_at AS at FROM audit_log WHERE bot_id = $1", [FLEET_STREAM])).rows[0]!.at
    expect(Math.abs(Date.parse(when) - Date.now())).toBeLessThan(120_000)
  }, 120_000)

  it("reaches what reads it: a lower resident cap passivates bots on the spot", async () => {
    const running = async (n: TestNode) => (await Effect.runPromise(n.node.supervisor.statuses)).filter((s) => s.state === "running").length
    // the four demo bots run on the two nodes
    await expect.poll(async () => (await running(nodes[0]!)) + (await running(nodes[1]!)), { timeout: 60_000 }).toBe(4)
    const set = await cli("config", "set", "MAX_RESIDENT_BOTS=1")
    expect(set.code).toBe(0)
    expect(set.out).toContain("MAX_RESIDENT_BOTS changed on 2 nodes")
    for (const n of nodes) await expect.poll(() => running(n), { timeout: 90_000 }).toBeLessThanOrEqual(1)
    expect((await cli("config", "set", "MAX_RESIDENT_BOTS=")).code).toBe(0)
    for (const n of nodes) expect(n.node.settings.current().maxResidentBots).toBe(0)
  }, 240_000)

  it("--node changes one node only", async () => {
    const set = await cli("config", "set", "LOG_LEVEL=debug", "--node", "node-b", "--json")
    expect(set.code).toBe(0)
    expect(JSON.parse(set.out).nodes).toEqual([{ nodeId: "node-b", name: "LOG_LEVEL", old: "WARN", value: "DEBUG", source: "live" }])
    expect(nodes[0]!.node.settings.current().logLevel.label).toBe("WARN")
    expect(nodes[1]!.node.settings.current().logLevel.label).toBe("DEBUG")
    const missing = await cli("config", "set", "LOG_LEVEL=info", "--node", "node-z")
    expect(missing.code).toBe(1)
    expect(missing.err).toContain("no running node heard the change")
  })

  it("refuses a setting that needs a restart, an unknown one and a bad value: nothing changes, nothing is recorded", async () => {
    const before = await fleetVersion()
    const restart = await cli("config", "set", "LEASE_TTL_MS=9000")
    expect(restart.code).toBe(1)
    expect(restart.err).toContain("LEASE_TTL_MS cannot change on a running node: set it in the environment or the BOTFLEET_CONFIG file and restart the nodes")
    const unknown = await cli("config", "set", "NOPE=1")
    expect(unknown.code).toBe(1)
    expect(unknown.err).toContain("NOPE is not a botfleet setting")
    const bad = await cli("config", "set", "PASSIVATE_AFTER_MS=soon")
    expect(bad.code).toBe(1)
    expect(bad.err).toContain('PASSIVATE_AFTER_MS: expects an integer from 1000 to 86400000 (milliseconds), got "soon"')
    expect((await cli("config", "set", "PASSIVATE_AFTER_MS")).code).toBe(2)
    expect(await fleetVersion()).toBe(before)
    for (const n of nodes) expect(n.node.settings.current().passivateAfterMs).toBe(300_000)
  })

  it("embedded mode has no control channel: refused with what to do instead", async () => {
    const r = await captureCli({ DATA_DIR: join(dataDir, "embedded"), LOG_LEVEL: "warning" }, ["config", "set", "LOG_LEVEL=debug"])
    expect(r.code).toBe(1)
    expect(r.err).toContain("live settings reach nodes over the control channel (production mode)")
  })
})
