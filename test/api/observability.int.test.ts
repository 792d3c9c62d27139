import { randomBytes } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createTestDatabase } from "../support/db.js"
import { startPrivateRedis } from "../support/privateRedis.js"
import type { PrivateRedis } from "../support/privateRedis.js"
import { promtool } from "../support/promtool.js"
import { parseExposition, sumOf } from "../metrics/support.js"
import { fleetEnv, replies, say, startTestNode } from "../runtime/support.js"
import type { TestNode } from "../runtime/support.js"

/*
 * /metrics, /health and /ready of a production node (Redis + Postgres, actors on two worker
 * threads), served by the webhook ingress's server. The node runs on a redis-server of this
 * suite's own, so the test can stop Redis under it.
 */

const USER = 4_242_421
let db: { url: string; drop: () => Promise<void> }
let redis: PrivateRedis
let dataDir: string
let running: TestNode | null = null

beforeAll(async () => {
  db = await createTestDatabase("observability")
  dataDir = await mkdtemp(join(tmpdir(), "bf-observability-"))
  redis = await startPrivateRedis({ dir: dataDir })
  running = await startTestNode(fleetEnv({ db, redis: { url: redis.url, prefix: "bf" }, secretKey: randomBytes(32).toString("base64"), dataDir }, { WORKER_THREADS: "2" }))
})
afterAll(async () => {
  await running?.stop()
  await redis?.stop()
  await db?.drop()
  await rm(dataDir, { recursive: true, force: true })
})

const get = async (path: string) => {
  const res = await fetch(`${running!.node.ingressUrl}${path}`)
  return { status: res.status, type: res.headers.get("content-type") ?? "", text: await res.text() }
}
const scrape = async () => {
  const res = await get("/metrics")
  expect(res.status).toBe(200)
  return res.text
}

describe("a node's /metrics, /health and /ready", () => {
  it("answers /health and /ready, and scrapes what its bots did (a scrape promtool accepts, with no user id or token in it)", async () => {
    const node = running!.node
    const health = await get("/health")
    expect(health.status).toBe(200)
    expect(JSON.parse(health.text)).toMatchObject({ status: "alive", phase: "running", nodeId: node.config.nodeId })
    const ready = await get("/ready")
    expect(ready.status).toBe(200)
    expect(JSON.parse(ready.text)).toMatchObject({
      ready: true,
      reason: null,
      checks: [
        { name: "database", ok: true },
        { name: "redis", ok: true },
        { name: "migrations", ok: true },
        { name: "supervisor", ok: true, detail: "running" }
      ]
    })

    await say(node, "sunny_demo_bot", { userId: USER, firstName: "Ada", text: "/start" })
    await say(node, "clerk_demo_bot", { userId: USER, firstName: "Ada", text: "/hours" })
    await expect.poll(() => replies(node, "sunny_demo_bot", USER), { timeout: 20_000 }).toHaveLength(1)
    await expect.poll(() => replies(node, "clerk_demo_bot", USER), { timeout: 20_000 }).toHaveLength(1)
    // the handled updates come from the projected events; the calls and appends from the worker threads' heartbeats
    await expect.poll(async () => sumOf(await scrape(), "botfleet_updates_handled_total", { kind: "builtin" }), { timeout: 20_000 }).toBe(2)
    await expect.poll(async () => sumOf(await scrape(), "botfleet_bot_api_calls_total", { method: "sendMessage", result: "ok" }), { timeout: 20_000 }).toBe(2)
    // a wrong secret and an unknown path are answered, and counted without their URLs
    expect((await fetch(`${node.ingressUrl}/telegram/demo-sunny`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).status).toBe(401)
    expect((await get(`/telegram-${USER}`)).status).toBe(404)

    // every demo bot running (the ones nobody wrote to may still be activating on a busy machine)
    await expect.poll(async () => sumOf(await scrape(), "botfleet_actors", { state: "running" }), { timeout: 30_000 }).toBe(4)
    const text = await scrape()
    expect(sumOf(text, "botfleet_node_info", { node_id: node.config.nodeId, mode: "production" })).toBe(1)
    expect(sumOf(text, "botfleet_updates_accepted_total", { kind: "builtin", source: "webhook" })).toBe(2)
    expect(sumOf(text, "botfleet_update_reply_seconds_count", { kind: "builtin" })).toBe(2)
    expect(sumOf(text, "botfleet_event_append_seconds_count")).toBeGreaterThanOrEqual(4)
    expect(sumOf(text, "botfleet_event_appends_total", { result: "ok" })).toBeGreaterThanOrEqual(4)
    expect(sumOf(text, "botfleet_actors", { state: "running" })).toBe(4)
    expect(sumOf(text, "botfleet_actor_activation_seconds_count")).toBeGreaterThanOrEqual(4)
    expect(sumOf(text, "botfleet_inbox_depth")).toBe(0)
    expect(sumOf(text, "botfleet_projected_events_total")).toBeGreaterThan(0)
    const partitions = parseExposition(text).filter((s) => s.name === "botfleet_projection_waiting_events")
    expect(partitions.map((s) => s.labels["partition"])).toEqual(Array.from({ length: node.config.partitions }, (_, p) => String(p)))
    expect(sumOf(text, "botfleet_dead_letters")).toBe(0)
    expect(sumOf(text, "botfleet_redis_used_memory_bytes")).toBeGreaterThan(0)
    expect(sumOf(text, "botfleet_http_requests_total", { route: "/telegram/:botId", method: "POST", code: "200" })).toBe(2)
    expect(sumOf(text, "botfleet_http_requests_total", { route: "/telegram/:botId", method: "POST", code: "401" })).toBe(1)
    expect(sumOf(text, "botfleet_http_requests_total", { route: "unmatched", code: "404" })).toBe(1)
    expect(sumOf(text, "process_cpu_seconds_total")).toBeGreaterThan(0)
    // no label names a user, a chat or a token; no bot id either (METRICS_BOT_LABELS is off)
    expect(text).not.toContain(String(USER))
    expect(text).not.toMatch(/\d+:[A-Za-z0-9_-]{30,}/)
    expect(text).not.toContain("demo-sunny")

    const checked = await promtool(["check", "metrics"], text)
    expect(checked.stdout + checked.stderr).toBe("")
    expect(checked.code).toBe(0)
  }, 90_000)

  it("answers /ready 503 with the reason while Redis is down and 200 once it is back; /health and /metrics keep answering", async () => {
    await redis.stop()
    try {
      await expect.poll(async () => (await get("/ready")).status, { timeout: 20_000 }).toBe(503)
      const body = JSON.parse((await get("/ready")).text) as { ready: boolean; reason: string; checks: Array<{ name: string; ok: boolean }> }
      expect(body.ready).toBe(false)
      expect(body.reason).toMatch(/^redis: /)
      expect(body.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(["redis"])
      expect((await get("/health")).status).toBe(200)
      // the gauges that need Redis fail within their deadline: the scrape still answers, and says so
      await expect.poll(async () => sumOf(await scrape(), "botfleet_metrics_source_errors_total", { source: "redis" }), { timeout: 30_000 }).toBeGreaterThan(0)
    } finally {
      await redis.start()
    }
    await expect.poll(async () => (await get("/ready")).status, { timeout: 30_000 }).toBe(200)
  }, 90_000)
})
