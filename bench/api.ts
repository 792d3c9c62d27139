import { loadavg } from "node:os"
import { Effect } from "effect"
import { addOwner, createToken } from "../src/api/auth/apiTokens.js"
import { analyticsStatements } from "../src/api/rest/analyticsRoutes.js"
import { botsPage, usersPage } from "../src/api/rest/ownerReadRoutes.js"
import { migrate } from "../src/db/migrator.js"
import { makePgSql } from "../src/db/pgSql.js"
import type { SqlClient, Statement } from "../src/db/sql.js"
import { createScratchDatabase } from "../test/support/databases.js"
import type { LoadJob, LoadResult, Target } from "./api/load.js"
import { forkChild } from "./e2e/procs.js"
import { report } from "./report.js"

/*
 * What the REST API costs over its own SQL. A database of OWNERS owners with BOTS_PER_OWNER bots
 * each, USERS users and MESSAGES messages spread over them (rows written straight into the
 * projection tables), and three processes: this one (seeds, then orchestrates), the API server
 * (bench/api/server.ts: the node's REST API plugin over a pg pool) and the load generator
 * (bench/api/load.ts). Per endpoint — GET /bots (list), /bots/{id}/users?limit=50 (list),
 * /bots/{id}/analytics (30 days) — at CONCURRENCY requests in flight:
 * - the API over HTTP with owner tokens (token check, one transaction as botfleet_api under
 *   row-level security, JSON): req/s, p50/p99 ms;
 * - the baseline, in the same run and from the same load-generator process at the same
 *   concurrency: the same statements sent straight to Postgres on `pg` as the login (no HTTP, no
 *   token, no transaction, no role, no row-level security);
 * ratio of req/s: API / direct (the target: >= 0.7). Then each list endpoint at RATE
 * requests/s offered (open loop, timed from when each was due): p50/p99 (target p99 <= 50 ms).
 * BENCH_SHORT=1: a tenth of the data. BENCH_API_NODE_ARGS: Node flags for the server process
 * (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
 */

const SHORT = process.env["BENCH_SHORT"] === "1"
const OWNERS = 50
const BOTS_PER_OWNER = 2
const USERS = SHORT ? 10_000 : 100_000
const MESSAGES = SHORT ? 100_000 : 1_000_000
const REQUESTS = SHORT ? 1_500 : 3_000
const CONCURRENCY = 16
const RATE = 500
const RATE_SECONDS = SHORT ? 6 : 10
const adminUrl = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"

const seed = async (sql: SqlClient) => {
  const bots = OWNERS * BOTS_PER_OWNER
  await sql.exec(`
    INSERT INTO bots (bot_id, owner_id, name, kind, mode, state, registered_at, version, last_event_at, log_partition)
      SELECT 'bot-' || b, 'owner-' || (b % ${OWNERS}), 'Bot ' || b, 'builtin', 'polling', 'running', now() - interval '60 days', 1, now(), b % 16
        FROM generate_series(0, ${bots - 1}) b;
    INSERT INTO bot_users (bot_id, user_id, owner_id, first_name, username, first_seen_at, last_seen_at, messages_in)
      SELECT 'bot-' || (u % ${bots}), u, 'owner-' || ((u % ${bots}) % ${OWNERS}), 'User ' || u, 'user' || u,
             now() - ((u % 60) || ' days')::interval, now(), 10
        FROM generate_series(1, ${USERS}) u;
    INSERT INTO messages (bot_id, version, owner_id, direction, chat_id, user_id, message_id, text, delivery_state, at)
      SELECT 'bot-' || ((m / 2) % ${bots}), m, 'owner-' || (((m / 2) % ${bots}) % ${OWNERS}),
             CASE WHEN m % 2 = 0 THEN 'in' ELSE 'out' END, 1 + (m / 2) % ${USERS}, CASE WHEN m % 2 = 0 THEN 1 + (m / 2) % ${USERS} END,
             m, 'message ' || m, CASE WHEN m % 2 = 0 THEN 'received' ELSE 'sent' END,
             now() - (((m / 2) % 30) || ' days')::interval + ((m % 2) * interval '1.5 seconds')
        FROM generate_series(0, ${MESSAGES - 1}) m;
    INSERT INTO daily_stats (bot_id, day, owner_id, messages_in, messages_out, active_users, new_users)
      SELECT 'bot-' || b, current_date - d, 'owner-' || (b % ${OWNERS}), 100, 100, 50, 5
        FROM generate_series(0, ${bots - 1}) b, generate_series(0, 29) d;
    INSERT INTO daily_active_users (bot_id, day, user_id, owner_id)
      SELECT 'bot-' || (u % ${bots}), current_date - (u % 30), u, 'owner-' || ((u % ${bots}) % ${OWNERS}) FROM generate_series(1, ${USERS}) u;
    INSERT INTO stats_first_seen (bot_id, user_id, owner_id, day)
      SELECT 'bot-' || (u % ${bots}), u, 'owner-' || ((u % ${bots}) % ${OWNERS}), current_date - (u % 60) FROM generate_series(1, ${USERS}) u;
    ANALYZE;
  `)
}

const loadLine = () => loadavg().map((l) => Math.round(l * 10) / 10).join(" ")

export const run = async (): Promise<void> => {
  const db = await createScratchDatabase(adminUrl, "bf_bench_api")
  const sql = makePgSql(db.url, { max: 4 })
  let server: Awaited<ReturnType<typeof forkChild>> | null = null
  let load: Awaited<ReturnType<typeof forkChild>> | null = null
  try {
    await migrate(sql)
    await seed(sql)
    const tokens: Array<string> = []
    for (let o = 0; o < OWNERS; o++) {
      await Effect.runPromise(addOwner(sql, `owner-${o}`, null))
      tokens.push((await Effect.runPromise(createToken(sql, { ownerId: `owner-${o}`, scope: "read", expiresAt: null, label: null }))).token)
    }
    const serverArgs = process.env["BENCH_API_NODE_ARGS"]?.split(" ").filter(Boolean) ?? []
    server = await forkChild("../api/server.ts", { BENCH_API_DATABASE_URL: db.url, BENCH_API_POOL: String(CONCURRENCY) }, serverArgs)
    load = await forkChild("../api/load.ts")
    const base = String(server.hello["base"])
    const today = new Date().toISOString().slice(0, 10)
    const from = new Date(Date.now() - 29 * 86_400_000).toISOString().slice(0, 10)
    // target i: owner i % OWNERS, one of its bots; the statements are the route's own
    const targets = (path: (bot: string) => string, statements: (bot: string) => ReadonlyArray<Statement>) =>
      Array.from({ length: OWNERS * BOTS_PER_OWNER }, (_, i): Target => {
        const o = i % OWNERS
        const bot = `bot-${o + OWNERS * (Math.floor(i / OWNERS) % BOTS_PER_OWNER)}`
        return { path: `/api/v1${path(bot)}`, token: tokens[o]!, statements: statements(bot).map((s) => ({ text: s.text, params: s.params ?? [], ...(s.name ? { name: s.name } : {}) })) }
      })
    const ownBots = (bot: string): Statement => {
      const page = botsPage(null, 51)
      return { name: "bf_bench_own_bots", text: page.text.replace("WHERE ", "WHERE owner_id = $3 AND "), params: [...page.params!, `owner-${Number(bot.slice(4)) % OWNERS}`] }
    }
    const endpoints = [
      // the direct query names the owner itself (what row-level security does for the API): without it, it would read every owner's bots
      { name: "api.bots", list: true, requests: REQUESTS, targets: targets(() => "/bots?limit=50", (bot) => [ownBots(bot)]) },
      { name: "api.users", list: true, requests: REQUESTS, targets: targets((bot) => `/bots/${bot}/users?limit=50`, (bot) => [usersPage(bot, null, null, 51)]) },
      {
        name: "api.analytics", list: false, requests: Math.round(REQUESTS / 5),
        targets: targets((bot) => `/bots/${bot}/analytics?from=${from}&to=${today}`, (bot) => analyticsStatements(bot, from, today))
      }
    ]
    const job = (via: LoadJob["via"], t: ReadonlyArray<Target>, more: Partial<LoadJob>): Promise<LoadResult> =>
      load!.ask<{ result: LoadResult }>({ job: { via, base, databaseUrl: db.url, targets: t, concurrency: CONCURRENCY, warmup: 50, ...more } }).then((r) => r.result)
    const env = { owners: OWNERS, bots: OWNERS * BOTS_PER_OWNER, users: USERS, messages: MESSAGES, concurrency: CONCURRENCY }
    for (const e of endpoints) {
      const loadBefore = loadLine()
      const cpu0 = await server!.ask<{ cpuMicros: number }>({ op: "cpu" })
      const viaApi = await job("http", e.targets, { amount: e.requests })
      const cpu1 = await server!.ask<{ cpuMicros: number }>({ op: "cpu" })
      const viaSql = await job("sql", e.targets, { amount: e.requests })
      for (const r of [viaApi, viaSql]) if (r.failed > 0) throw new Error(`${e.name}: ${r.failed} requests failed, first: ${r.firstFailure}`)
      report({
        bench: e.name, unit: "req/s", value: viaApi.perSecond,
        baseline: "the same statements sent straight to Postgres on pg from the load generator, same concurrency (no HTTP, token, transaction, role or RLS)",
        baselineValue: viaSql.perSecond, p50Ms: viaApi.p50, p99Ms: viaApi.p99, sqlP50Ms: viaSql.p50, sqlP99Ms: viaSql.p99,
        // CPU per request (µs): the API server (its warm-up included), the HTTP client, the direct client
        serverCpuUs: Math.round((cpu1.cpuMicros - cpu0.cpuMicros) / (e.requests + 50)), clientCpuUs: viaApi.clientCpuMicros, sqlClientCpuUs: viaSql.clientCpuMicros,
        requests: e.requests, ...env, loadAverage: `${loadBefore} -> ${loadLine()}`
      })
    }
    for (const e of endpoints.filter((x) => x.list)) {
      const loadBefore = loadLine()
      const atRate = await job("http", e.targets, { rate: RATE, seconds: RATE_SECONDS, concurrency: 64 })
      if (atRate.failed > 0) throw new Error(`${e.name} at ${RATE}/s: ${atRate.failed} requests failed, first: ${atRate.firstFailure}`)
      report({ bench: `${e.name}.at${RATE}`, unit: "ms p99", value: atRate.p99, p50Ms: atRate.p50, offered: RATE, answeredPerSecond: atRate.perSecond, seconds: RATE_SECONDS, ...env, loadAverage: `${loadBefore} -> ${loadLine()}` })
    }
  } finally {
    await load?.stop()
    await server?.stop()
    await sql.close()
    await db.drop()
  }
}
