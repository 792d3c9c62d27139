import { readFileSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit, Logger, LogLevel, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { main } from "../../../src/cli/main.js"
import { loadConfig } from "../../../src/config.js"
import { startNode } from "../../../src/runtime/node.js"
import type { RunningNode } from "../../../src/runtime/node.js"

/*
 * Commands an embedded node runs for other processes, in this test's process (the node started
 * here, the commands posted to its endpoint as the CLI would): reads see the node's data, changes
 * go to the bots' actors on the node, and a following `tail` ends when the node stops.
 */

let dir: string
let scope: Scope.CloseableScope
let node: RunningNode
let endpoint: { url: string; credential: string }
const quiet = Logger.minimumLogLevel(LogLevel.Error)

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "bf-hosted-"))
  const env = { DATA_DIR: dir, HTTP_PORT: "0", LOG_LEVEL: "warning" }
  const config = await Effect.runPromise(loadConfig(env))
  scope = await Effect.runPromise(Scope.make())
  node = await Effect.runPromise(Scope.extend(startNode(config, { sandbox: true, demo: true, cli: { run: main, env } }), scope).pipe(Effect.provide(quiet)))
  endpoint = JSON.parse(readFileSync(join(dir, "pglite.node.json"), "utf8")) as typeof endpoint
}, 120_000)
afterAll(async () => {
  // closed by the last test already, unless an earlier one failed (closing again does nothing)
  await Effect.runPromise(Scope.close(scope, Exit.void).pipe(Effect.provide(quiet)))
  await rm(dir, { recursive: true, force: true })
})

/** Posts `argv` as the CLI beside the node would; what it printed and its exit code. */
const hosted = async (argv: ReadonlyArray<string>, token?: string) => {
  const res = await fetch(`${endpoint.url}/_internal/cli`, {
    method: "POST",
    headers: { authorization: `Bearer ${endpoint.credential}`, "content-type": "application/json" },
    body: JSON.stringify({ argv, ...(token !== undefined ? { token } : {}) })
  })
  expect(res.status).toBe(200)
  const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l) as { out?: string; err?: string; exit?: number })
  return {
    code: lines.at(-1)!.exit,
    out: lines.flatMap((l) => (l.out !== undefined ? [l.out] : [])).join("\n"),
    err: lines.flatMap((l) => (l.err !== undefined ? [l.err] : [])).join("\n")
  }
}

describe("commands run by the embedded node for another process", () => {
  it("reads the node's data", async () => {
    const status = await hosted(["status", "--json"])
    expect([status.code, status.err]).toEqual([0, ""])
    expect((JSON.parse(status.out) as { bots: unknown[] }).bots).toHaveLength(4)
    expect((await hosted(["bots", "list"])).out).toMatch(/demo-sage\s+@\w+\s+running/)
    expect(JSON.parse((await hosted(["inspect", "demo-sage", "--at", "1"])).out)).toMatchObject({ version: 1 })
    expect((await hosted(["tail", "demo-sage", "--no-follow", "--json"])).out.split("\n")[0]).toContain('"type":"BotRegistered"')
    expect(await hosted(["dlq", "list"])).toEqual({ code: 0, out: "no dead-letter entries", err: "" })
    expect((await hosted(["audit", "verify"])).code).toBe(0)
  })

  it("creates and lists broadcasts and tags users on the node's database", async () => {
    const created = await hosted(["broadcast", "create", "demo-sunny", "--segment", "language=xx", "--text", "News"])
    // nobody speaks xx: refused by the node's store, the same typed error as the direct path
    expect(created.code).toBe(1)
    expect(created.err).toMatch(/segment|no user|empty/i)
    expect((await hosted(["broadcast", "list", "demo-sunny"])).code).toBe(0)
    const tagged = await hosted(["users", "tag", "demo-sunny", "4242", "vip"])
    expect([tagged.code, tagged.err]).toEqual([0, ""])
  })

  it("changes bots through their actors on the node, and records itself what no actor runs", async () => {
    const configured = await hosted(["bots", "configure", "demo-clerk", "--set", "greeting=Hi", "--json"])
    expect(configured.code).toBe(0)
    expect(JSON.parse(configured.out)).toMatchObject({ botId: "demo-clerk", events: ["BotConfigChanged"], node: "embedded" })

    const stopped = await hosted(["bots", "stop", "demo-sage", "--json"])
    expect(JSON.parse(stopped.out)).toMatchObject({ events: ["BotStopped"], node: "embedded" })
    expect((await hosted(["bots", "list"])).out).not.toContain("demo-sage")
    // no actor runs it now: removed under its lease by the command itself
    const removed = await hosted(["bots", "remove", "demo-sage", "--json"])
    expect(removed.code).toBe(0)
    expect(JSON.parse(removed.out)).toMatchObject({ events: ["BotRemoved"] })
    expect(JSON.parse(removed.out)).not.toHaveProperty("node")
    const refused = await hosted(["bots", "start", "demo-sage"])
    expect([refused.code, refused.err]).toEqual([1, expect.stringContaining("is removed")])

    const sandbox = node.sandbox!
    const made = sandbox.world.createBot({ username: "hosted_extra_bot" })
    const added = await hosted(["bots", "add", "hosted-extra", "--owner", "demo", "--api-root", sandbox.apiRoot, "--json"], made.token)
    expect(added.code).toBe(0)
    expect(JSON.parse(added.out)).toMatchObject({ botId: "hosted-extra", username: "hosted_extra_bot", nodesTold: 1 })
    const missing = await hosted(["bots", "add", "hosted-extra-2", "--owner", "demo", "--api-root", sandbox.apiRoot])
    expect([missing.code, missing.err]).toEqual([1, expect.stringContaining("no token given")])

    // a new token for a bot the node runs: recorded by its actor, which runs again with it
    const fresh = sandbox.world.rotateToken("barnacle_demo_bot")
    const rotated = await hosted(["bots", "rotate-token", "demo-barnacle", "--api-root", sandbox.apiRoot, "--json"], fresh)
    expect([rotated.code, rotated.err]).toEqual([0, ""])
    expect(JSON.parse(rotated.out)).toMatchObject({ events: ["BotTokenRotated"], node: "embedded", username: "barnacle_demo_bot" })
    expect(rotated.out).not.toContain(fresh)
    await expect.poll(async () => (await hosted(["bots", "list"])).out, { timeout: 30_000, interval: 500 }).toMatch(/demo-barnacle\s+@\w+\s+running/)

    expect((await hosted(["owners", "add", "demo"])).code).toBe(0)
    const token = JSON.parse((await hosted(["tokens", "create", "--owner", "demo", "--json"])).out) as { tokenId: string }
    expect((await hosted(["tokens", "list"])).out).toContain(token.tokenId)
    expect((await hosted(["tokens", "revoke", token.tokenId])).code).toBe(0)
  })

  it("ends a following tail when the node stops, and takes its endpoint file away", async () => {
    const res = await fetch(`${endpoint.url}/_internal/cli`, {
      method: "POST",
      headers: { authorization: `Bearer ${endpoint.credential}`, "content-type": "application/json" },
      body: JSON.stringify({ argv: ["tail", "demo-clerk"] })
    })
    const reader = res.body!.getReader()
    const decoder = new TextDecoder()
    let text = ""
    // the tail printed the bot's last events: it follows now
    while (!text.includes("BotConfigChanged")) text += decoder.decode((await reader.read()).value, { stream: true })
    await Effect.runPromise(Scope.close(scope, Exit.void).pipe(Effect.provide(quiet)))
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      text += decoder.decode(value, { stream: true })
    }
    expect(text.trim().split("\n").at(-1)).toBe('{"exit":0}')
    expect(() => readFileSync(join(dir, "pglite.node.json"))).toThrow()
  }, 60_000)
})
