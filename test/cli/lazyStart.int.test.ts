import { execFile } from "node:child_process"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { productionCliEnv } from "./support.js"
import type { ProductionCliEnv } from "./support.js"

/*
 * `botfleet --version` and `--help` start at once because they load none of the heavy modules:
 * the real bin/botfleet.js (dist/ when built, the sources otherwise), with a resolve hook
 * recording every module the process imports.
 */

const bin = fileURLToPath(new URL("../../bin/botfleet.js", import.meta.url))
const recorder = fileURLToPath(new URL("./fixtures/recordImports.mjs", import.meta.url))
const heavy = /\/node_modules\/(effect|pg|ioredis|telegraf|piscina|fastify|@electric-sql\/pglite)\//

describe("a lazy start", () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "bf-lazy-"))
  })
  afterAll(() => rm(dir, { recursive: true, force: true }))

  const imports = async (name: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
    const record = join(dir, name)
    const r = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile(process.execPath, ["--import", recorder, bin, ...args], { env: { ...process.env, ...env, RECORD_IMPORTS: record }, timeout: 60_000 }, (e, out) =>
        resolve({ code: e ? Number(e.code ?? 1) : 0, out })
      )
    )
    const urls = (await readFile(record, "utf8")).split("\n").filter((u) => u.length > 0)
    return { ...r, urls }
  }

  it("prints the version and the list of commands without importing Effect, the store clients or telegraf", async () => {
    const version = await imports("version", ["--version"])
    expect(version.code).toBe(0)
    expect(version.out.trim()).toMatch(/^\d+\.\d+\.\d+/)
    const help = await imports("help", ["--help"])
    expect(help.code).toBe(0)
    expect(help.out).toContain("bots")
    expect(help.out).toContain("rebuild [options] <projection>")
    for (const { urls } of [version, help]) {
      expect(urls.some((u) => u.includes("/cli/main."))).toBe(true)
      expect(urls.filter((u) => heavy.test(u))).toEqual([])
    }
  }, 60_000)

  it("loads them for a command that needs them, and only that command's module", async () => {
    const r = await imports("bots-help", ["bots", "--help"])
    expect(r.code).toBe(0)
    expect(r.out).toContain("list")
    expect(r.urls.some((u) => heavy.test(u))).toBe(true)
    expect(r.urls.filter((u) => /\/cli\/commands\/\w+\.(js|ts)$/.test(u)).map((u) => u.replace(/.*\/commands\//, ""))).toEqual([expect.stringMatching(/^botsCommand\./)])
  }, 60_000)

  describe("bots list in production mode (Redis + Postgres)", () => {
    let prod: ProductionCliEnv
    beforeAll(async () => {
      prod = await productionCliEnv("lazy_list")
      expect((await prod.cli({}, "migrate")).code).toBe(0)
    }, 60_000)
    afterAll(() => prod.cleanup())

    // what a read needs is the stores' clients; the rest belongs to other commands or to the node
    const notForAList = /\/node_modules\/(@electric-sql\/pglite|piscina|fastify|@fastify\/[^/]+|telegraf|openai|undici|minio|cli-progress)\//

    it("lists the bots with the Redis and Postgres clients, loading no embedded database, worker pool, HTTP server, Bot API client, bot kinds or model client", async () => {
      const r = await imports("bots-list", ["bots", "list"], prod.env)
      expect(r.code).toBe(0)
      expect(r.out).toContain("no bots in the fleet directory")
      expect(r.urls.some((u) => /\/node_modules\/ioredis\//.test(u))).toBe(true)
      expect(r.urls.some((u) => /\/node_modules\/pg\//.test(u))).toBe(true)
      expect(r.urls.filter((u) => notForAList.test(u))).toEqual([])
    }, 60_000)
  })
})
