import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "vitest"
import { captureCli } from "../support.js"

/*
 * One process per data folder, with real processes: `botfleet run` on a temp DATA_DIR (embedded
 * mode); a second node on the same folder is refused naming the first one's pid; CLI commands run
 * beside it (as child processes, and in this test's process) go through the node instead of
 * opening PGlite, with the output and exit codes of the command run directly; commands that need
 * the folder to themselves are refused; after kill -9 the next node takes the folder over.
 */

const bin = fileURLToPath(new URL("../../../bin/botfleet.js", import.meta.url))
const dirs: string[] = []
const children: ChildProcess[] = []
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL")
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

interface Proc {
  readonly child: ChildProcess
  readonly out: () => string
  readonly err: () => string
  readonly exited: Promise<number | null>
}

const start = (argv: ReadonlyArray<string>, env: Record<string, string>, stdin?: string): Proc => {
  const child = spawn(process.execPath, [bin, ...argv], { env: { ...process.env, ...env }, stdio: [stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"] })
  children.push(child)
  let out = ""
  let err = ""
  child.stdout!.on("data", (b: Buffer) => (out += b.toString()))
  child.stderr!.on("data", (b: Buffer) => (err += b.toString()))
  if (stdin !== undefined) child.stdin!.end(stdin)
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  return { child, out: () => out, err: () => err, exited }
}

/** `botfleet <argv>` as a child process, to its end. */
const cliProcess = async (env: Record<string, string>, argv: ReadonlyArray<string>, stdin?: string) => {
  const p = start(argv, env, stdin)
  const code = await p.exited
  return { code, out: p.out(), err: p.err() }
}

const startNode = async (env: Record<string, string>) => {
  const node = start(["run"], env)
  await expect.poll(() => node.out() + (node.child.exitCode !== null ? `exited: ${node.err()}` : ""), { timeout: 90_000, interval: 250 }).toContain("Press Ctrl-C")
  const ingress = /webhook ingress: (http:\/\/\S+)\/telegram/.exec(node.out())![1]!
  const sandbox = /Bot API sandbox: (http:\/\/\S+)/.exec(node.out())![1]!
  return { ...node, ingress, sandbox }
}

const tempDataDir = async () => {
  const d = await mkdtemp(join(tmpdir(), "bf-beside-"))
  dirs.push(d)
  return d
}

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) })

describe("the CLI beside a running embedded node", () => {
  it("refuses a second node, runs reads and writes through the node, refuses what needs the folder, and lets go at stop", async () => {
    const dataDir = await tempDataDir()
    const env = { DATA_DIR: dataDir, HTTP_PORT: "0", LOG_LEVEL: "warning" }
    const node = await startNode(env)
    const pid = node.child.pid!
    const cli = (...argv: Array<string>) => captureCli(env, argv)

    // a second node on the same folder is refused at start, naming the holder's pid
    const second = await cliProcess(env, ["run"])
    expect(second.code).toBe(1)
    expect(second.err).toContain(`in use by botfleet process ${pid}`)
    expect(second.out).not.toContain("Press Ctrl-C")

    // where the node takes commands: beside its lock, its owner's only
    const endpointFile = join(dataDir, "pglite.node.json")
    expect(statSync(endpointFile).mode & 0o777).toBe(0o600)
    const endpoint = JSON.parse(readFileSync(endpointFile, "utf8")) as { pid: number; url: string; credential: string }
    expect(endpoint.pid).toBe(pid)
    // ... and nobody without that run's credential
    expect((await post(`${endpoint.url}/_internal/cli`, { argv: ["status"] }, { authorization: "Bearer forged" })).status).toBe(401)
    expect((await post(`${endpoint.url}/_internal/cli`, { argv: ["import", "x"] }, { authorization: `Bearer ${endpoint.credential}` })).status).toBe(400)

    // reads, from another process
    const status = await cliProcess(env, ["status", "--json"])
    expect(status.err).toBe("")
    expect(status.code).toBe(0)
    const parsed = JSON.parse(status.out) as { mode: string; bots: Array<{ botId: string; state: string }> }
    expect(parsed.mode).toBe("embedded")
    expect(parsed.bots.map((b) => b.botId).sort()).toEqual(["demo-barnacle", "demo-clerk", "demo-sage", "demo-sunny"])

    const list = await cli("bots", "list")
    expect(list.code).toBe(0)
    expect(list.out).toMatch(/demo-sunny\s+@\w+\s+running/)
    const inspected = await cli("inspect", "demo-sunny")
    expect(inspected.code).toBe(0)
    expect((JSON.parse(inspected.out) as { eventCounts: Record<string, number> }).eventCounts["BotRegistered"]).toBe(1)
    const tail = await cli("tail", "demo-sunny", "--no-follow")
    expect([tail.code, tail.out]).toEqual([0, expect.stringMatching(/^v1 .* BotRegistered /)])

    // failures keep their text and exit codes: unknown bot 1, usage error 2
    const unknown = await cli("inspect", "nope")
    expect([unknown.code, unknown.err]).toEqual([1, expect.stringContaining("bot nope has no events")])
    const usage = await cli("bots", "list", "--bogus")
    expect([usage.code, usage.err]).toEqual([2, expect.stringContaining("unknown option '--bogus'")])

    // writes go to the bots' actors on the node
    const configured = await cli("bots", "configure", "demo-barnacle", "--set", "greeting=Ahoy")
    expect([configured.code, configured.out]).toEqual([0, expect.stringContaining("recorded BotConfigChanged by node embedded")])
    // a patch file named relative to this process's folder (the node runs in another)
    const patch = join(dataDir, "patch.json")
    writeFileSync(patch, JSON.stringify({ help: "Orders:" }))
    const here = process.cwd()
    process.chdir(dataDir)
    try {
      const fromFile = await cli("bots", "configure", "demo-barnacle", "--file", "patch.json")
      expect([fromFile.code, fromFile.err]).toEqual([0, ""])
    } finally {
      process.chdir(here)
    }
    const refusedConfig = await cli("bots", "configure", "demo-barnacle", "--set", "nope=1")
    expect([refusedConfig.code, refusedConfig.err]).toEqual([1, expect.stringContaining("nothing was recorded")])
    const shown = await cli("bots", "configure", "demo-barnacle", "--show", "--json")
    expect(shown.code).toBe(0)
    expect(JSON.parse(shown.out)).toMatchObject({ version: 4, effective: { greeting: "Ahoy", help: "Orders:" } })

    const stopped = await cli("bots", "stop", "demo-sunny")
    expect([stopped.code, stopped.out]).toEqual([0, expect.stringContaining("recorded BotStopped")])
    expect((await cli("bots", "list")).out).not.toContain("demo-sunny")
    const started = await cli("bots", "start", "demo-sunny")
    expect([started.code, started.out]).toEqual([0, expect.stringContaining("1 running node told to start it now")])
    await expect.poll(async () => (await cli("bots", "list")).out, { timeout: 30_000, interval: 500 }).toMatch(/demo-sunny\s+@\w+\s+running\s+4/)

    // a new bot, its token on the CLI process's stdin
    const made = (await (await post(`${node.sandbox}/sandbox/bots`, { username: "extra_bot" })).json()) as { token: string }
    const added = await cliProcess(env, ["bots", "add", "extra", "--owner", "demo", "--api-root", node.sandbox], made.token + "\n")
    expect([added.code, added.err]).toEqual([0, ""])
    expect(added.out).toContain("bot extra added (Telegram @extra_bot")
    expect(added.out + added.err).not.toContain(made.token)
    const noToken = await cliProcess(env, ["bots", "add", "extra2", "--owner", "demo", "--api-root", node.sandbox])
    expect([noToken.code, noToken.err]).toEqual([1, expect.stringContaining("no token given")])

    // API tokens made through the node work on the node at once, and stop working once revoked
    expect((await cli("owners", "add", "demo")).code).toBe(0)
    const token = await cli("tokens", "create", "--owner", "demo", "--json")
    expect(token.code).toBe(0)
    const { token: secret, tokenId } = JSON.parse(token.out) as { token: string; tokenId: string }
    const bots = await fetch(`${node.ingress}/api/v1/bots`, { headers: { authorization: `Bearer ${secret}` } })
    expect(bots.status).toBe(200)
    expect(JSON.stringify(await bots.json())).toContain("demo-sunny")
    expect((await cli("tokens", "list")).out).toContain(tokenId)
    expect((await cli("tokens", "revoke", tokenId)).code).toBe(0)
    // revoked by the node itself (the command ran there): its token cache dropped it at once
    expect((await fetch(`${node.ingress}/api/v1/bots`, { headers: { authorization: `Bearer ${secret}` } })).status).toBe(401)

    // commands that need the folder to themselves are refused, saying what to do
    for (const argv of [["import", dataDir], ["restore", "latest"], ["backup", "now"]]) {
      const r = await cli(...argv)
      expect(r.code, argv[0]).toBe(1)
      expect(r.err, argv[0]).toContain(`cannot run while the botfleet node (pid ${pid}) holds ${dataDir}`)
      expect(r.err, argv[0]).toContain("Stop that node")
    }

    // `tail` follows through the node: a conversation shows up as it happens
    const following = start(["tail", "demo-clerk"], env)
    await expect.poll(following.out, { timeout: 60_000, interval: 250 }).toContain("BotStarted")
    expect((await post(`${node.sandbox}/sandbox/clerk_demo_bot/say`, { userId: 7, firstName: "Ada", text: "/start" })).status).toBe(200)
    await expect.poll(following.out, { timeout: 30_000, interval: 250 }).toContain("UpdateReceived")

    // a node stopping ends a tail that follows it (exit 0), and lets the folder go
    node.child.kill("SIGINT")
    expect(await following.exited).toBe(0)
    expect(await node.exited).toBe(0)
    expect(existsSync(endpointFile)).toBe(false)
    expect(existsSync(join(dataDir, "pglite.lock"))).toBe(false)

    // with no node, the same commands open the folder themselves and see what was done through it
    const after = await cli("bots", "configure", "demo-barnacle", "--show", "--json")
    expect(after.code).toBe(0)
    expect(JSON.parse(after.out)).toMatchObject({ effective: { greeting: "Ahoy" } })
    expect((await cli("bots", "list")).out).toContain("extra")
  }, 400_000)

  it("after kill -9 the lock names a dead pid: the CLI opens the folder itself and the next node takes it over", async () => {
    const dataDir = await tempDataDir()
    const env = { DATA_DIR: dataDir, HTTP_PORT: "0", LOG_LEVEL: "warning" }
    const first = await startNode(env)
    const firstPid = first.child.pid!
    first.child.kill("SIGKILL")
    await first.exited
    expect((JSON.parse(readFileSync(join(dataDir, "pglite.lock"), "utf8")) as { pid: number }).pid).toBe(firstPid)

    // the stale endpoint file is not followed: the command runs here
    const status = await cliProcess(env, ["status", "--json"])
    expect([status.code, status.err]).toEqual([0, ""])
    expect((JSON.parse(status.out) as { bots: unknown[] }).bots).toHaveLength(4)

    const next = await startNode(env)
    expect((JSON.parse(readFileSync(join(dataDir, "pglite.lock"), "utf8")) as { pid: number }).pid).toBe(next.child.pid)
    const list = await cliProcess(env, ["bots", "list"])
    expect([list.code, list.out]).toEqual([0, expect.stringMatching(/demo-sunny\s+@\w+\s+running/)])
    next.child.kill("SIGINT")
    expect(await next.exited).toBe(0)
  }, 300_000)
})
