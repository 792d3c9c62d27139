import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Either, Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { loadConfig } from "../src/config.js"

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "bf-config-"))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const load = (env: Record<string, string>) => Effect.runPromise(Effect.either(loadConfig(env)))

describe("configuration files", () => {
  it("embedded mode generates a secret key once, private to the owner, and reuses it", async () => {
    const dataDir = join(dir, "data")
    const first = Either.getOrThrow(await load({ DATA_DIR: dataDir }))
    const second = Either.getOrThrow(await load({ DATA_DIR: dataDir }))
    expect(Redacted.value(first.secretKey)).toHaveLength(32)
    expect(Buffer.from(Redacted.value(second.secretKey))).toEqual(Buffer.from(Redacted.value(first.secretKey)))
    expect((await stat(join(dataDir, "secret.key"))).mode & 0o777).toBe(0o600)
  })

  it("refuses a corrupted key file instead of replacing it", async () => {
    const dataDir = join(dir, "corrupt")
    await load({ DATA_DIR: dataDir })
    await writeFile(join(dataDir, "secret.key"), "not a key")
    const r = await load({ DATA_DIR: dataDir })
    expect(Either.isLeft(r) && r.left.message).toContain("BOTFLEET_SECRET_KEY")
    expect(await readFile(join(dataDir, "secret.key"), "utf8")).toBe("not a key")
  })

  it("reads settings from the BOTFLEET_CONFIG file, the environment winning", async () => {
    const file = join(dir, "botfleet.json")
    await writeFile(file, JSON.stringify({ PARTITIONS: 32, HTTP_PORT: 9000, NODE_ID: "from-file", DATA_DIR: join(dir, "f") }))
    const c = Either.getOrThrow(await load({ BOTFLEET_CONFIG: file, HTTP_PORT: "9100" }))
    expect([c.partitions, c.httpPort, c.nodeId]).toEqual([32, 9100, "from-file"])
  })

  it("names BOTFLEET_CONFIG when its file is missing or not JSON", async () => {
    const missing = await load({ BOTFLEET_CONFIG: join(dir, "nope.json") })
    expect(Either.isLeft(missing) && missing.left.problems[0]?.variable).toBe("BOTFLEET_CONFIG")
    const broken = join(dir, "broken.json")
    await writeFile(broken, "{ PARTITIONS: ")
    const r = await load({ BOTFLEET_CONFIG: broken })
    expect(Either.isLeft(r) && r.left.message).toMatch(/BOTFLEET_CONFIG: expects a JSON file/)
  })

  it("validates values from the file like those from the environment", async () => {
    const file = join(dir, "bad.json")
    await writeFile(file, JSON.stringify({ PARTITIONS: 0, DATA_DIR: join(dir, "g") }))
    const r = await load({ BOTFLEET_CONFIG: file })
    expect(Either.isLeft(r) && r.left.problems).toEqual([{ variable: "PARTITIONS", problem: 'expects an integer from 1 to 1024, got "0"' }])
  })
})
