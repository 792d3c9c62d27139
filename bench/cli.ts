import { spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Redis } from "ioredis"
import { main as cli } from "../src/cli/main.js"
import { createScratchDatabase } from "../test/support/databases.js"
import { deleteKeysUnder } from "../test/support/redisCleanup.js"
import { percentile, report } from "./report.js"

/*
 * cli.startup: wall time of `botfleet --version` and of `botfleet bots list` (a read command on
 * Redis + Postgres, production mode, a migrated fleet of 3 bots), each a fresh process through
 * bin/botfleet.js as ops run it; median of RUNS. Baseline: `node -e 0`, the floor of any Node
 * process on this machine. Targets (issue 13): --version <= 200 ms, a read command <= 500 ms.
 */

const RUNS = process.env["BENCH_SHORT"] === "1" ? 3 : 7
const bin = fileURLToPath(new URL("../bin/botfleet.js", import.meta.url))
const redisUrl = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"
const adminUrl = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"

const medianMs = (args: ReadonlyArray<string>, env: Record<string, string> = {}): number => {
  const times: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now()
    const r = spawnSync(process.execPath, args, { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] })
    if (r.status !== 0) throw new Error(`${args.join(" ")} exited ${r.status}: ${r.stderr.toString("utf8").slice(-2000)}`)
    times.push(performance.now() - t0)
  }
  times.sort((a, b) => a - b)
  return Math.round(percentile(times, 50))
}

export const run = async (): Promise<void> => {
  const db = await createScratchDatabase(adminUrl, "bench_cli")
  const prefix = `bench-cli-${randomBytes(4).toString("hex")}`
  const dataDir = await mkdtemp(join(tmpdir(), "bf-bench-cli-"))
  const env = { DATABASE_URL: db.url, REDIS_URL: redisUrl, REDIS_PREFIX: prefix, BOTFLEET_SECRET_KEY: randomBytes(32).toString("base64"), DATA_DIR: dataDir, LOG_LEVEL: "warning" }
  try {
    const io = { stdout: () => undefined, stderr: (t: string) => void process.stderr.write(t + "\n"), stderrIsTTY: false, env }
    if ((await cli(["migrate"], io)) !== 0) throw new Error("botfleet migrate failed")
    const loadBefore = loadavg().map((l) => Math.round(l * 100) / 100)
    const floor = medianMs(["-e", "0"])
    const version = medianMs([bin, "--version"])
    const list = medianMs([bin, "bots", "list"], env)
    const machine = { runs: RUNS, loadBefore, loadAfter: loadavg().map((l) => Math.round(l * 100) / 100) }
    report({ bench: "cli.startup.version", unit: "ms", value: version, baseline: "node -e 0", baselineValue: floor, target: "<= 200", ...machine })
    report({ bench: "cli.startup.bots_list", unit: "ms", value: list, baseline: "node -e 0", baselineValue: floor, target: "<= 500", mode: "production (Redis + Postgres)", ...machine })
  } finally {
    const redis = new Redis(redisUrl)
    await deleteKeysUnder(redis, prefix)
    redis.disconnect()
    await db.drop()
    await rm(dataDir, { recursive: true, force: true })
  }
}
