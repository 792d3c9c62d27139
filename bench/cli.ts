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
 * Redis + Postgres, production mode, a migrated scratch database), each a fresh process through
 * bin/botfleet.js as ops run it (the compiled build: the bench builds first), and the same two
 * through tsx from the sources (`node --import tsx src/cli/bin.ts`, what bin/botfleet.js did before
 * the build and still does when dist/ is older than src/); median of RUNS, the runs of the four
 * interleaved so that load changes hit all alike. Baseline: `node -e 0`, the floor of any Node
 * process on this machine. Targets (issue 13): --version <= 200 ms, a read command <= 500 ms.
 * BENCH_CLI_OTHER_BIN=<other checkout>/bin/botfleet.js adds that checkout's `bots list` to the same
 * interleaved runs (before/after a change; build it there first).
 */

const RUNS = process.env["BENCH_SHORT"] === "1" ? 3 : 7
const bin = fileURLToPath(new URL("../bin/botfleet.js", import.meta.url))
const redisUrl = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"
const adminUrl = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"

const otherBin = process.env["BENCH_CLI_OTHER_BIN"]
const srcBin = fileURLToPath(new URL("../src/cli/bin.ts", import.meta.url))
const root = fileURLToPath(new URL("../", import.meta.url))

const timeMs = (args: ReadonlyArray<string>, env: Record<string, string>): number => {
  const t0 = performance.now()
  const r = spawnSync(process.execPath, args, { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] })
  if (r.status !== 0) throw new Error(`${args.join(" ")} exited ${r.status}: ${r.stderr.toString("utf8").slice(-2000)}`)
  return performance.now() - t0
}

interface Case {
  readonly args: ReadonlyArray<string>
  readonly env?: Record<string, string>
}

/** The median wall time of each case, RUNS rounds of every case in turn. */
const medians = <const C extends ReadonlyArray<Case>>(cases: C): { readonly [K in keyof C]: number } => {
  const times = cases.map(() => [] as number[])
  for (let i = 0; i < RUNS; i++) cases.forEach((c, k) => times[k]!.push(timeMs(c.args, c.env ?? {})))
  return times.map((t) => Math.round(percentile([...t].sort((a, b) => a - b), 50))) as { readonly [K in keyof C]: number }
}

export const run = async (): Promise<void> => {
  const db = await createScratchDatabase(adminUrl, "bench_cli")
  const prefix = `bench-cli-${randomBytes(4).toString("hex")}`
  const dataDir = await mkdtemp(join(tmpdir(), "bf-bench-cli-"))
  const env = { DATABASE_URL: db.url, REDIS_URL: redisUrl, REDIS_PREFIX: prefix, BOTFLEET_SECRET_KEY: randomBytes(32).toString("base64"), DATA_DIR: dataDir, LOG_LEVEL: "warning" }
  try {
    const io = { stdout: () => undefined, stderr: (t: string) => void process.stderr.write(t + "\n"), stderrIsTTY: false, env }
    if ((await cli(["migrate"], io)) !== 0) throw new Error("botfleet migrate failed")
    const build = spawnSync("npm", ["run", "build"], { cwd: root, stdio: ["ignore", "ignore", "pipe"] })
    if (build.status !== 0) throw new Error(`npm run build failed: ${build.stderr.toString("utf8").slice(-2000)}`)
    const loadBefore = loadavg().map((l) => Math.round(l * 100) / 100)
    const [floor, version, list, versionTsx, listTsx, listOther] = medians([
      { args: ["-e", "0"] },
      { args: [bin, "--version"] },
      { args: [bin, "bots", "list"], env },
      { args: ["--import", "tsx", srcBin, "--version"] },
      { args: ["--import", "tsx", srcBin, "bots", "list"], env },
      ...(otherBin !== undefined ? [{ args: [otherBin, "bots", "list"], env }] : [])
    ])
    const machine = { runs: RUNS, loadBefore, loadAfter: loadavg().map((l) => Math.round(l * 100) / 100) }
    const line = (bench: string, value: number, extra: Record<string, unknown>) =>
      report({ bench, unit: "ms", value, baseline: "node -e 0", baselineValue: floor, ...extra, ...machine })
    line("cli.startup.version", version, { entry: "bin/botfleet.js (dist)", target: "<= 200", before: versionTsx, speedup: Math.round((versionTsx / version) * 100) / 100 })
    line("cli.startup.bots_list", list, { entry: "bin/botfleet.js (dist)", target: "<= 500", mode: "production (Redis + Postgres)", before: listTsx, speedup: Math.round((listTsx / list) * 100) / 100 })
    line("cli.startup.version.tsx", versionTsx, { entry: "src through tsx (before)" })
    line("cli.startup.bots_list.tsx", listTsx, { entry: "src through tsx (before)", mode: "production (Redis + Postgres)" })
    if (listOther !== undefined) line("cli.startup.bots_list.other", listOther, { entry: otherBin, mode: "production (Redis + Postgres)", thisCheckout: list, speedup: Math.round((listOther / list) * 100) / 100 })
  } finally {
    const redis = new Redis(redisUrl)
    await deleteKeysUnder(redis, prefix)
    redis.disconnect()
    await db.drop()
    await rm(dataDir, { recursive: true, force: true })
  }
}
