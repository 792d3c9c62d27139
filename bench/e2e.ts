import { randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { Redis } from "ioredis"
import pg from "pg"
import { main as cli } from "../src/cli/main.js"
import { webhookSecretFor } from "../src/telegram/webhookSecret.js"
import { createScratchDatabase } from "../test/support/databases.js"
import { deleteKeysUnder } from "../test/support/redisCleanup.js"
import type { LoadJob, LoadResult } from "./e2e/load.js"
import { forkChild, freePort, spawnBotfleet } from "./e2e/procs.js"
import type { Child } from "./e2e/procs.js"
import { percentile, report } from "./report.js"

/*
 * e2e, measured the way a fleet operator would (issue 13): four kinds of processes on one machine.
 * - botfleet: `botfleet run --no-sandbox` in production mode (Redis + Postgres, WORKER_THREADS
 *   worker threads), 50 webhook bots of the built-in kind registered with `botfleet bots add`, plus
 *   one busy bot;
 * - the baseline: 50 (+1) plain telegraf webhook bots in one process, same behaviour, state in
 *   memory (bench/e2e/plainBots.ts);
 * - the stand-in Bot API (bench/e2e/standInApi.ts): getMe, setWebhook, sendMessage, records when
 *   each reply arrived;
 * - the load generator (bench/e2e/load.ts): autocannon, 50 connections, posting `/start` updates
 *   with the webhook secret, recording when each was sent.
 * Both sides get the same updates and the same stand-in; they run one after the other. Figures:
 * webhook 2xx/s and replies/s for a burst, reply latency p50/p99 at fixed offered rates, one busy
 * bot with 2,000 chats, lost and doubled replies (must be 0), and a bare fastify route as the
 * ingress's ceiling. Sending limits are off on both sides (SEND_LIMIT_PER_BOT=0,
 * SEND_LIMIT_PER_CHAT=100): the stand-in has none, and neither has plain telegraf.
 * BENCH_SHORT=1: a smaller burst and one rate, about a minute.
 */

const SHORT = process.env["BENCH_SHORT"] === "1"
const BOTS = Number(process.env["BENCH_E2E_BOTS"] ?? 50)
const BURST = Number(process.env["BENCH_E2E_UPDATES"] ?? (SHORT ? 3000 : 10_000))
const RATES = (process.env["BENCH_E2E_RATES"] ?? (SHORT ? "500" : "250,500,1000")).split(",").map(Number)
const RATE_SECONDS = SHORT ? 3 : 5
const SINGLE = Number(process.env["BENCH_E2E_SINGLE_UPDATES"] ?? (SHORT ? 3000 : 10_000))
const SINGLE_CHATS = 2000
const CONNECTIONS = 50
const WORKERS = process.env["BENCH_E2E_WORKER_THREADS"] ?? "2"
const redisUrl = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"
const adminUrl = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"

interface Route {
  readonly path: string
  readonly secret: string
  readonly botKey: number
}

interface Side {
  readonly name: string
  /** The process answering the webhooks (its CPU time, all threads, is measured per phase). */
  readonly pid: number
  readonly target: string
  readonly fleet: ReadonlyArray<Route>
  readonly busy: Route
  /** What the side asked of Redis and Postgres so far (botfleet only): see `workOf`. */
  readonly work?: () => Promise<Work>
}

/** Redis commands by name (INFO commandstats: exact when the bench has its Redis to itself) and Postgres transactions of the node's database. */
interface Work {
  readonly redis: ReadonlyMap<string, number>
  readonly pgXacts: number
}

interface Phase {
  readonly sent: number
  readonly ok2xx: number
  readonly non2xx: number
  readonly webhookPerS: number
  readonly repliesPerS: number
  readonly lost: number
  readonly doubled: number
  readonly p50: number
  readonly p99: number
  /** CPU time of the side's process (all threads) per update sent, µs. */
  readonly cpuUsPerUpdate: number
  /** Per update sent: Redis commands (all, and the busiest by name) and Postgres transactions. */
  readonly work?: { readonly redisCalls: number; readonly pgXacts: number; readonly byCommand: Readonly<Record<string, number>> }
}

/** utime + stime of a process, ms (Linux /proc; clock ticks of 10 ms). */
const cpuMsOf = (pid: number): number => {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100
  } catch {
    return NaN
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const round1 = (n: number) => Math.round(n * 10) / 10
let updateIds = 1

/** Runs one load job, waits until every reply arrived (or none came for 20 s), pairs sends with replies. */
const phase = async (api: Child, load: Child, side: Side, job: Omit<LoadJob, "target" | "updateIdBase" | "connections" | "text"> & { connections?: number; noReplies?: boolean }): Promise<Phase> => {
  await api.ask({ op: "reset" })
  const base = updateIds
  updateIds += job.amount + 1000
  const cpu0 = cpuMsOf(side.pid)
  const work0 = await side.work?.()
  const { noReplies: _, ...loadJob } = job
  const r = await load.ask<{ result: LoadResult }>({ job: { connections: CONNECTIONS, text: "/start", ...loadJob, target: side.target, updateIdBase: base } satisfies LoadJob })
  const result = r.result
  let seen = -1
  let lastChange = Date.now()
  for (;;) {
    if (job.noReplies) break
    const { total } = await api.ask<{ total: number }>({ op: "count" })
    if (total >= result.sent.length) break
    if (total !== seen) {
      seen = total
      lastChange = Date.now()
    } else if (Date.now() - lastChange > 20_000) break
    await sleep(20)
  }
  const cpu1 = cpuMsOf(side.pid)
  await sleep(200) // a doubled reply would come right after the last one
  const work1 = work0 && (await side.work?.())
  const { arrivals } = await api.ask<{ arrivals: ReadonlyArray<[string, number[]]> }>({ op: "collect" })
  const got = new Map(arrivals)
  const sentBy = new Map<string, number[]>()
  for (const [bot, chat, at] of result.sent) {
    const k = `${bot}:${chat}`
    const l = sentBy.get(k)
    if (l) l.push(at)
    else sentBy.set(k, [at])
  }
  let lost = 0
  let doubled = 0
  let lastReply = 0
  const latencies: number[] = []
  for (const [k, sends] of sentBy) {
    const replies = got.get(k) ?? []
    lost += Math.max(0, sends.length - replies.length)
    doubled += Math.max(0, replies.length - sends.length)
    // replies come in order per chat: the i-th reply answers the i-th update
    for (let i = 0; i < Math.min(sends.length, replies.length); i++) latencies.push(replies[i]! - sends[i]!)
  }
  for (const [k, replies] of got) {
    if (!sentBy.has(k)) doubled += replies.length
    for (const t of replies) lastReply = Math.max(lastReply, t)
  }
  latencies.sort((a, b) => a - b)
  const seconds = (result.endedAt - result.startedAt) / 1000
  return {
    sent: result.sent.length,
    ok2xx: result.ok2xx,
    non2xx: result.non2xx + result.errors + result.timeouts,
    webhookPerS: Math.round(result.ok2xx / seconds),
    repliesPerS: lastReply > 0 ? Math.round(latencies.length / ((lastReply - result.startedAt) / 1000)) : 0,
    lost,
    doubled,
    p50: round1(percentile(latencies, 50)),
    p99: round1(percentile(latencies, 99)),
    cpuUsPerUpdate: Math.round(((cpu1 - cpu0) * 1000) / result.sent.length),
    ...(work0 && work1 ? { work: workPerUpdate(work0, work1, result.sent.length) } : {})
  }
}

const round2 = (n: number) => Math.round(n * 100) / 100
const workPerUpdate = (a: Work, b: Work, updates: number) => {
  const byCommand: Record<string, number> = {}
  let calls = 0
  for (const [cmd, n] of b.redis) {
    const d = n - (a.redis.get(cmd) ?? 0)
    calls += d
    if (d / updates >= 0.05) byCommand[cmd] = round2(d / updates)
  }
  return { redisCalls: round2(calls / updates), pgXacts: round2((b.pgXacts - a.pgXacts) / updates), byCommand }
}

/**
 * The work counters of a botfleet side. Postgres publishes a backend's transaction counts about
 * once a second (PGSTAT_MIN_INTERVAL), so a phase's figure can be off by a second's worth.
 */
const workOf = (redis: Redis, admin: pg.Client, database: string) => async (): Promise<Work> => {
  const info = await redis.info("commandstats")
  const counts = new Map<string, number>()
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) counts.set(m[1]!, Number(m[2]))
  await sleep(1100)
  await admin.query("SELECT pg_stat_clear_snapshot()")
  const { rows } = await admin.query<{ n: string }>("SELECT (xact_commit + xact_rollback)::text AS n FROM pg_stat_database WHERE datname = $1", [database])
  return { redis: counts, pgXacts: Number(rows[0]?.n ?? 0) }
}

/** The same measurements on one side; returns them by name. */
const measure = async (api: Child, load: Child, side: Side) => {
  const out: Record<string, Phase> = {}
  // warm-up: every bot answers twice (JIT, connections, activation)
  const warm = await phase(api, load, side, { routes: [...side.fleet, side.busy], amount: (side.fleet.length + 1) * 4, chats: { kind: "unique", base: 10_000_000 } })
  if (warm.lost > 0) throw new Error(`${side.name}: ${warm.lost} warm-up updates got no reply (${JSON.stringify(warm)})`)
  out["burst"] = await phase(api, load, side, { routes: side.fleet, amount: BURST, chats: { kind: "unique", base: 20_000_000 } })
  for (const rate of RATES) {
    out[`rate${rate}`] = await phase(api, load, side, { routes: side.fleet, amount: rate * RATE_SECONDS, rate, chats: { kind: "unique", base: 30_000_000 + rate * 10_000 } })
  }
  out["single"] = await phase(api, load, side, { routes: [side.busy], amount: SINGLE, chats: { kind: "shared", count: SINGLE_CHATS } })
  return out
}

const tokenFor = (key: number) => `${key}:AAbench${randomBytes(12).toString("hex")}`

const baselineSide = async (api: Child, load: Child) => {
  const key = randomBytes(32)
  const bots = Array.from({ length: BOTS + 1 }, (_, i) => ({ key: 1000 + i, token: tokenFor(1000 + i), secret: webhookSecretFor(key, String(i)) }))
  const plain = await forkChild("./plainBots.ts")
  try {
    const { url } = await plain.ask<{ url: string }>({ job: { apiRoot: api.hello["apiRoot"], bots } })
    const routes = bots.map((b) => ({ path: `/tg/${b.key}`, secret: b.secret, botKey: b.key }))
    return await measure(api, load, { name: "plain telegraf", pid: plain.process.pid!, target: url, fleet: routes.slice(0, BOTS), busy: routes[BOTS]! })
  } finally {
    await plain.stop()
  }
}

const botfleetSide = async (api: Child, load: Child) => {
  const apiRoot = api.hello["apiRoot"] as string
  const db = await createScratchDatabase(adminUrl, "bench_e2e")
  const prefix = `bench-e2e-${randomBytes(4).toString("hex")}`
  const dataDir = await mkdtemp(join(tmpdir(), "bf-bench-e2e-"))
  const key = randomBytes(32)
  const port = await freePort()
  const env: Record<string, string> = {
    DATABASE_URL: db.url,
    REDIS_URL: redisUrl,
    REDIS_PREFIX: prefix,
    BOTFLEET_SECRET_KEY: key.toString("base64"),
    DATA_DIR: dataDir,
    TELEGRAM_API_ROOT: apiRoot,
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    HTTP_PORT: String(port),
    WORKER_THREADS: WORKERS,
    NODE_ID: "bench-e2e",
    LOG_LEVEL: "warning",
    SEND_LIMIT_PER_BOT: "0",
    SEND_LIMIT_PER_CHAT: "100"
  }
  const quiet = { stdout: () => undefined, stderr: (t: string) => void process.stderr.write(t + "\n"), stderrIsTTY: false }
  let node: ReturnType<typeof spawnBotfleet> | null = null
  let workRedis: Redis | null = null
  let workPg: pg.Client | null = null
  try {
    if ((await cli(["migrate"], { ...quiet, env })) !== 0) throw new Error("botfleet migrate failed")
    const routes: Route[] = []
    for (let i = 0; i <= BOTS; i++) {
      const botKey = 2000 + i
      const botId = i === BOTS ? "busy" : `b${i}`
      const code = await cli(["bots", "add", botId, "--owner", "bench", "--mode", "webhook", "--api-root", apiRoot], { ...quiet, env: { ...env, BOT_TOKEN: tokenFor(botKey) } })
      if (code !== 0) throw new Error(`botfleet bots add ${botId} exited ${code}`)
      routes.push({ path: `/telegram/${botId}`, secret: webhookSecretFor(key, botId), botKey })
    }
    node = spawnBotfleet(["run", "--no-sandbox"], env)
    const until = Date.now() + 120_000
    for (;;) {
      if (node.process.exitCode !== null) throw new Error(`botfleet run exited ${node.process.exitCode}:\n${node.log()}`)
      if (Date.now() > until) throw new Error(`botfleet run did not get ready with its bots in 120 s:\n${node.log()}`)
      const ready = await fetch(`${env["PUBLIC_URL"]}/ready`).then((r) => r.ok, () => false)
      const { webhooks } = await api.ask<{ webhooks: number }>({ op: "count" })
      if (ready && webhooks >= BOTS + 1) break
      await sleep(200)
    }
    workRedis = new Redis(redisUrl)
    workPg = new pg.Client({ connectionString: adminUrl })
    await workPg.connect()
    const work = workOf(workRedis, workPg, new URL(db.url).pathname.slice(1))
    return await measure(api, load, { name: "botfleet", pid: node.process.pid!, target: env["PUBLIC_URL"]!, fleet: routes.slice(0, BOTS), busy: routes[BOTS]!, work })
  } finally {
    workRedis?.disconnect()
    await workPg?.end()
    await node?.stop()
    const redis = new Redis(redisUrl)
    await deleteKeysUnder(redis, prefix)
    redis.disconnect()
    await db.drop()
    await rm(dataDir, { recursive: true, force: true })
  }
}

/** The ingress's ceiling: a bare fastify route, bursted the same way. */
const bareFastify = async (api: Child, load: Child): Promise<number> => {
  const bare = await forkChild("./bareFastify.ts")
  try {
    const route = { path: "/telegram/x", secret: "-", botKey: 1 }
    const side = { name: "bare fastify", pid: bare.process.pid!, target: bare.hello["url"] as string, fleet: [route], busy: route }
    await phase(api, load, side, { routes: [route], amount: 2000, chats: { kind: "unique", base: 1 }, noReplies: true })
    const p = await phase(api, load, side, { routes: [route], amount: BURST, chats: { kind: "unique", base: 1 }, noReplies: true })
    return p.webhookPerS
  } finally {
    await bare.stop()
  }
}

/** The ingress alone (bench/e2e/ingressOnly.ts), bursted the same way: secret, shape, one Redis script. */
const ingressAlone = async (api: Child, load: Child, steps = false): Promise<Phase> => {
  const key = randomBytes(32)
  const alone = await forkChild("./ingressOnly.ts", { BENCH_INGRESS_KEY: key.toString("base64"), BENCH_INGRESS_STEPS: steps ? "1" : "0" })
  try {
    const routes = Array.from({ length: BOTS }, (_, i) => ({ path: `/telegram/b${i}`, secret: webhookSecretFor(key, `b${i}`), botKey: i }))
    const side = { name: "ingress alone", pid: alone.process.pid!, target: alone.hello["url"] as string, fleet: routes, busy: routes[0]! }
    await phase(api, load, side, { routes, amount: 2000, chats: { kind: "unique", base: 1 }, noReplies: true })
    return await phase(api, load, side, { routes, amount: BURST, chats: { kind: "unique", base: 1 }, noReplies: true })
  } finally {
    await alone.stop()
  }
}

export const run = async (): Promise<void> => {
  const loadBefore = loadavg().map((l) => Math.round(l * 100) / 100)
  const api = await forkChild("./standInApi.ts")
  const load = await forkChild("./load.ts")
  try {
    // BENCH_E2E_ONLY=botfleet: the node alone (e.g. to profile it with BENCH_E2E_NODE_ARGS=--cpu-prof)
    if (process.env["BENCH_E2E_ONLY"] === "botfleet") return void console.log(JSON.stringify(await botfleetSide(api, load)))
    const ceiling = await bareFastify(api, load)
    const alone = await ingressAlone(api, load)
    const stepwise = await ingressAlone(api, load, true)
    // BENCH_E2E_ONLY=ingress: the ingress alone against the bare fastify route, nothing else
    if (process.env["BENCH_E2E_ONLY"] === "ingress") {
      report({ bench: "e2e.ingress_alone", unit: "updates/s", value: alone.webhookPerS, baseline: "a fastify route that parses the body and answers 200", baselineValue: ceiling, cpuUsPerUpdate: alone.cpuUsPerUpdate, non2xx: alone.non2xx, loadAfter: loadavg() })
      return report({ bench: "e2e.ingress_alone.vs_stepwise", unit: "updates/s", value: alone.webhookPerS, baseline: "the same ingress with dedupe + inbox step by step (three round trips, as before)", baselineValue: stepwise.webhookPerS, cpuUsPerUpdate: alone.cpuUsPerUpdate, baselineCpuUsPerUpdate: stepwise.cpuUsPerUpdate })
    }
    const plain = await baselineSide(api, load)
    const fleet = await botfleetSide(api, load)
    const machine = { loadBefore, loadAfter: loadavg().map((l) => Math.round(l * 100) / 100), workerThreads: Number(WORKERS) }
    const baseline = "plain telegraf webhook bots (one process), same stand-in API and load"
    const b = fleet["burst"]!
    const pb = plain["burst"]!
    report({ bench: "e2e.webhook.2xx_per_s", unit: "updates/s", value: b.webhookPerS, baseline, baselineValue: pb.webhookPerS, burst: BURST, bots: BOTS, connections: CONNECTIONS, non2xx: b.non2xx, ...machine })
    report({ bench: "e2e.cpu_per_update", unit: "µs", value: b.cpuUsPerUpdate, baseline, baselineValue: pb.cpuUsPerUpdate, note: "CPU time of the answering process, all threads, per update of the burst (ingress + handling + reply; botfleet also projects)" })
    report({ bench: "e2e.ingress_alone", unit: "updates/s", value: alone.webhookPerS, baseline: "a fastify route that parses the body and answers 200", baselineValue: ceiling, cpuUsPerUpdate: alone.cpuUsPerUpdate, non2xx: alone.non2xx, target: ">= 10000 and >= 0.5x" })
    report({ bench: "e2e.ingress_alone.vs_stepwise", unit: "updates/s", value: alone.webhookPerS, baseline: "the same ingress with dedupe + inbox step by step (three round trips, as before)", baselineValue: stepwise.webhookPerS, cpuUsPerUpdate: alone.cpuUsPerUpdate, baselineCpuUsPerUpdate: stepwise.cpuUsPerUpdate })
    report({ bench: "e2e.ingress_in_node_vs_bare_fastify", unit: "updates/s", value: b.webhookPerS, baseline: "a fastify route that parses the body and answers 200", baselineValue: ceiling, target: ">= 10000 and >= 0.5x" })
    report({ bench: "e2e.burst.replies_per_s", unit: "replies/s", value: b.repliesPerS, baseline, baselineValue: pb.repliesPerS, burst: BURST, lost: b.lost, doubled: b.doubled, baselineLost: pb.lost, baselineDoubled: pb.doubled, target: ">= 0.5x" })
    for (const rate of RATES) {
      const f = fleet[`rate${rate}`]!
      const p = plain[`rate${rate}`]!
      const common = { offeredRate: rate, seconds: RATE_SECONDS, lost: f.lost, doubled: f.doubled, baselineLost: p.lost, baselineDoubled: p.doubled }
      report({ bench: `e2e.latency.p50@${rate}`, unit: "ms", value: f.p50, baseline, baselineValue: p.p50, ...common })
      report({ bench: `e2e.latency.p99@${rate}`, unit: "ms", value: f.p99, baseline, baselineValue: p.p99, ...common, ...(rate === 500 ? { target: "<= 50" } : {}) })
    }
    const s = fleet["single"]!
    const ps = plain["single"]!
    report({ bench: "e2e.single-bot", unit: "replies/s", value: s.repliesPerS, baseline: "one plain telegraf webhook bot", baselineValue: ps.repliesPerS, chats: SINGLE_CHATS, updates: SINGLE, lost: s.lost, doubled: s.doubled, baselineLost: ps.lost, baselineDoubled: ps.doubled, p50: s.p50, p99: s.p99, target: ">= 1000" })
    // what an update asks of the shared stores, whatever the machine's load (no baseline: telegraf keeps nothing)
    for (const [name, f] of [["burst", b], ["single-bot", s]] as const) {
      if (f.work) report({ bench: `e2e.work_per_update.${name}`, unit: "Redis commands", value: f.work.redisCalls, pgTransactions: f.work.pgXacts, byCommand: f.work.byCommand })
    }
  } finally {
    await load.stop()
    await api.stop()
  }
}
