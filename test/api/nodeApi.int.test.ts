import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { addOwner, createToken } from "../../src/api/auth/apiTokens.js"
import { replies, say, startTestNode } from "../runtime/support.js"
import type { TestNode } from "../runtime/support.js"

/*
 * The REST API as `npm start` serves it: an embedded node (PGlite, row-level security there too),
 * its demo bots owned by "demo". Changes go to the node's own actors (no control channel in
 * embedded mode), and the bot runs on with them.
 */

let dataDir: string
let running: TestNode
let token: string
let other: string

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "bf-node-api-"))
  running = await startTestNode({ DATA_DIR: dataDir })
  const sql = running.node.stores.sql
  await Effect.runPromise(addOwner(sql, "demo", null))
  await Effect.runPromise(addOwner(sql, "someone-else", null))
  token = (await Effect.runPromise(createToken(sql, { ownerId: "demo", scope: "write", expiresAt: null, label: null }))).token
  other = (await Effect.runPromise(createToken(sql, { ownerId: "someone-else", scope: "read", expiresAt: null, label: null }))).token
}, 120_000)
afterAll(async () => {
  await running?.stop()
  await rm(dataDir, { recursive: true, force: true })
})

const call = async (method: string, path: string, bearer: string, body?: unknown) => {
  const res = await fetch(`${running.node.ingressUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${bearer}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {})
  })
  return { status: res.status, body: (await res.json()) as any } // eslint-disable-line @typescript-eslint/no-explicit-any
}

describe("the node's REST API (embedded mode)", () => {
  it("shows the owner its bots and their numbers, and nobody else's", async () => {
    await expect.poll(async () => (await call("GET", "/api/v1/bots", token)).body.items?.length, { timeout: 30_000 }).toBe(4)
    expect((await call("GET", "/api/v1/bots", other)).body.items).toEqual([])
    expect((await call("GET", "/api/v1/bots/demo-sunny", other)).status).toBe(404)
    await say(running.node, "sunny_demo_bot", { userId: 7, firstName: "Ada", text: "/start" })
    await expect.poll(() => replies(running.node, "sunny_demo_bot", 7), { timeout: 20_000 }).toHaveLength(1)
    await expect.poll(async () => (await call("GET", "/api/v1/bots/demo-sunny/users", token)).body.items?.map((u: { firstName: string }) => u.firstName), { timeout: 30_000 }).toEqual(["Ada"])
    const today = new Date().toISOString().slice(0, 10)
    await expect.poll(async () => (await call("GET", `/api/v1/bots/demo-sunny/analytics?from=${today}&to=${today}`, token)).body.days?.[0]?.messagesIn, { timeout: 30_000 }).toBe(1)
  }, 120_000)

  it("configures a running bot through the node's own actor; the bot answers with the new configuration", async () => {
    const r = await call("PATCH", "/api/v1/bots/demo-sunny/config", token, { greeting: "Ahoy {name}, from the API!" })
    expect([r.status, r.body.events]).toEqual([200, ["BotConfigChanged"]])
    await say(running.node, "sunny_demo_bot", { userId: 9, firstName: "Bo", text: "/start" })
    await expect.poll(() => replies(running.node, "sunny_demo_bot", 9), { timeout: 20_000 }).toEqual([expect.stringContaining("Ahoy Bo, from the API!")])
  }, 60_000)

  it("serves /openapi.json, /docs and /dashboard beside the webhook ingress", async () => {
    for (const path of ["/openapi.json", "/docs/", "/dashboard", "/dashboard/app.js", "/dashboard/chart.js"]) {
      expect((await fetch(`${running.node.ingressUrl}${path}`)).status, path).toBe(200)
    }
  })
})
