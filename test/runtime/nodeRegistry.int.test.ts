import { randomBytes } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makePgSql } from "../../src/db/pgSql.js"
import { makeNodeRegistry } from "../../src/runtime/nodeRegistry.js"
import { nodeVersion } from "../../src/runtime/nodeVersion.js"
import { captureCli } from "../cli/support.js"
import { createTestDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"
import { fleetEnv, startTestNode } from "./support.js"
import type { TestNode } from "./support.js"

/*
 * The node registry as an operator sees it: `botfleet status` lists every node that joined the
 * fleet (id, version, bots held, last heartbeat), marks one stopped gracefully, and flags one that
 * went silent (no heartbeat within its lease TTL) with an ALERT line.
 */

const redis = createTestPrefix("node-registry")
let db: { url: string; drop: () => Promise<void> }
let dataDir: string
let env: Record<string, string>
const nodes: TestNode[] = []

beforeAll(async () => {
  db = await createTestDatabase("node_registry")
  dataDir = await mkdtemp(join(tmpdir(), "bf-registry-"))
  env = fleetEnv({ db, redis, secretKey: randomBytes(32).toString("base64"), dataDir }, { LEASE_TTL_MS: "3000", LEASE_RENEW_MS: "500", WORKER_THREADS: "0" })
})
afterAll(async () => {
  for (const n of nodes) await n.stop().catch(() => undefined)
  await db.drop()
  await redis.cleanup()
  await rm(dataDir, { recursive: true, force: true })
})

interface StatusNode {
  nodeId: string
  version: string
  state: string
  botsHeld: number
  heartbeatAgeMs: number
  live: boolean
}
const statusNodes = async (): Promise<ReadonlyArray<StatusNode>> => {
  const res = await captureCli(env, ["status", "--json"])
  expect(res.code, res.err).toBe(0)
  return (JSON.parse(res.out) as { nodes: StatusNode[] }).nodes
}

describe("botfleet status: the nodes", () => {
  it("shows every node with its version, bots held and heartbeat; a stopped node as stopped; a silent one flagged", async () => {
    // two nodes share the demo fleet (4 bots), each placing the bots by rendezvous hashing
    nodes.push(await startTestNode({ ...env, NODE_ID: "node-a" }))
    nodes.push(await startTestNode({ ...env, NODE_ID: "node-b" }))
    await expect
      .poll(async () => (await statusNodes()).reduce((n, s) => n + s.botsHeld, 0), { timeout: 30_000, interval: 500 })
      .toBe(4)
    const both = await statusNodes()
    expect(both.map((n) => [n.nodeId, n.version, n.state, n.live])).toEqual([
      ["node-a", nodeVersion, "live", true],
      ["node-b", nodeVersion, "live", true]
    ])

    // a node that joined and never beat again (as a killed one): SILENT once its TTL has passed
    const sql = makePgSql(db.url, { max: 1 })
    try {
      await Effect.runPromise(makeNodeRegistry(sql).register({ nodeId: "ghost", version: "0.0.9", eventVersions: {}, leaseTtlMs: 1000 }))
    } finally {
      await sql.close()
    }
    await expect.poll(async () => (await statusNodes()).find((n) => n.nodeId === "ghost")?.state, { timeout: 10_000, interval: 300 }).toBe("SILENT")

    // a graceful stop: stopped, and its bots are held by the other node
    await nodes.shift()!.stop()
    await expect.poll(async () => (await statusNodes()).find((n) => n.nodeId === "node-b")?.botsHeld, { timeout: 30_000, interval: 500 }).toBe(4)
    const after = await statusNodes()
    expect(after.map((n) => [n.nodeId, n.state])).toEqual([
      ["ghost", "SILENT"],
      ["node-a", "stopped"],
      ["node-b", "live"]
    ])

    const table = await captureCli(env, ["status"])
    expect(table.code).toBe(0)
    expect(table.out).toContain("nodes: 1 live of 3")
    expect(table.out).toMatch(/node-b\s+\S+\s+live\s+4\s+/)
    expect(table.out).toContain("ALERT: node ghost stopped heartbeating")
    expect(table.out).not.toContain("ALERT: node node-a")
  }, 120_000)
})
