import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { createServer } from "node:http"
import type { Server, ServerResponse } from "node:http"
import { writeFileSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { hostname, tmpdir } from "node:os"
import { join } from "node:path"
import type { AddressInfo } from "node:net"
import Fastify from "fastify"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { cliEndpoint } from "../../../src/api/cliEndpoint.js"
import type { CliIo } from "../../../src/cli/io.js"
import { captureCli } from "../support.js"

/*
 * Both ends of a command sent to the node that holds DATA_DIR, apart: the node's endpoint
 * (credential, what it runs, what it streams back) and the CLI's side when the node does not
 * answer as it should (a clear error, exit 1, never a hang or a half answer taken for success).
 */

describe("the node's CLI endpoint", () => {
  const credential = "c".repeat(43)
  const seen: Array<{ argv: ReadonlyArray<string>; env: CliIo["env"]; hosted: boolean }> = []
  const endpoint = cliEndpoint({
    credential,
    env: { DATA_DIR: "/data", BOT_TOKEN: "the-node's-own" },
    host: { stores: {} as never, node: () => null },
    run: async (argv, io) => {
      seen.push({ argv, env: io.env, hosted: io.host !== undefined })
      if (argv[1] === "explode") throw new Error("boom")
      io.stdout("line one")
      io.stderr("a warning")
      return argv[1] === "list" ? 0 : 2
    }
  })
  const app = Fastify()
  beforeAll(async () => {
    await app.register(endpoint.plugin)
    await app.ready()
  })
  afterAll(() => app.close())
  const send = (body: unknown, auth = `Bearer ${credential}`) => app.inject({ method: "POST", url: "/_internal/cli", headers: { authorization: auth }, payload: body as object })

  it("refuses a forged credential, a malformed body and a command that does not run on a node, running nothing", async () => {
    expect((await send({ argv: ["bots", "list"] }, "Bearer forged")).statusCode).toBe(401)
    expect((await send({ argv: ["bots", "list"] }, "")).statusCode).toBe(401)
    expect((await send({ argv: "bots list" })).statusCode).toBe(400)
    expect((await send({ argv: [1] })).statusCode).toBe(400)
    const refused = await send({ argv: ["restore", "latest"] })
    expect([refused.statusCode, refused.json().code]).toEqual([400, "not_forwarded"])
    expect(seen).toEqual([])
  })

  it("runs the command hosted and streams what it prints, then its exit code; the sender's token replaces the node's", async () => {
    const r = await send({ argv: ["bots", "list"] })
    expect(r.statusCode).toBe(200)
    expect(r.body.trim().split("\n").map((l) => JSON.parse(l) as unknown)).toEqual([{ out: "line one" }, { err: "a warning" }, { exit: 0 }])
    expect(seen.at(-1)).toEqual({ argv: ["bots", "list"], env: { DATA_DIR: "/data" }, hosted: true })

    const withToken = await send({ argv: ["bots", "add", "x", "--owner", "o"], token: "123:abc" })
    expect(withToken.body.trim().split("\n").at(-1)).toBe('{"exit":2}')
    expect(seen.at(-1)!.env).toEqual({ DATA_DIR: "/data", BOT_TOKEN: "123:abc" })

    const exploded = await send({ argv: ["bots", "explode"] })
    const lines = exploded.body.trim().split("\n").map((l) => JSON.parse(l) as { err?: string; exit?: number })
    expect(lines[0]!.err).toContain("botfleet failed unexpectedly")
    expect(lines.at(-1)).toEqual({ exit: 1 })
  })
})

describe("the CLI when the node does not answer as it should", () => {
  let dir: string
  let holder: ChildProcess
  let server: Server
  let answer: (res: ServerResponse) => void = () => {}
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "bf-remote-"))
    holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 120000)"], { stdio: "ignore" })
    server = createServer((_req, res) => answer(res))
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  })
  afterAll(async () => {
    holder.kill("SIGKILL")
    await new Promise((r) => server.close(r))
    await rm(dir, { recursive: true, force: true })
  })

  /** The lock and endpoint file a node `holder` would write, with `url`. */
  const publish = (url: string) => {
    writeFileSync(join(dir, "pglite.lock"), JSON.stringify({ pid: holder.pid, host: hostname(), since: new Date().toISOString() }))
    writeFileSync(join(dir, "pglite.node.json"), JSON.stringify({ pid: holder.pid, host: hostname(), url, credential: "x" }), { mode: 0o600 })
  }
  const env = () => ({ DATA_DIR: dir, LOG_LEVEL: "error" })
  const url = () => `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  it("says so, exit 1: nothing listening, an HTTP error, an answer that breaks off", async () => {
    publish("http://127.0.0.1:1")
    const closed = await captureCli(env(), ["status"])
    expect([closed.code, closed.err]).toEqual([1, expect.stringContaining(`the botfleet node (pid ${holder.pid}) holds ${dir} but did not take the command`)])

    publish(url())
    answer = (res) => res.writeHead(401, { "content-type": "application/json" }).end('{"code":"unauthorized"}')
    const refused = await captureCli(env(), ["bots", "list"])
    expect([refused.code, refused.err]).toEqual([1, expect.stringContaining("HTTP 401")])

    answer = (res) => res.writeHead(200).end('{"out":"half"}\n')
    const broken = await captureCli(env(), ["bots", "list"])
    expect(broken.out).toBe("half")
    expect([broken.code, broken.err]).toEqual([1, expect.stringContaining("broke off before the command ended")])
  })
})
