import { Effect } from "effect"
import Fastify from "fastify"
import { addOwner, createToken, makeAuthenticator } from "../src/api/auth/apiTokens.js"
import { makeBotWrites } from "../src/api/rest/botWrites.js"
import { restApi } from "../src/api/rest/restApi.js"
import { readAnalytics } from "../src/api/rest/analyticsRoutes.js"
import { makeMemoryInbox } from "../src/actors/memoryInbox.js"
import { loadConfig } from "../src/config.js"
import { migrate } from "../src/db/migrator.js"
import { makePgSql } from "../src/db/pgSql.js"
import type { SqlClient } from "../src/db/sql.js"
import { makeMemoryEventLog } from "../src/events/memoryEventLog.js"
import { createScratchDatabase } from "../test/support/databases.js"
import { percentile, report } from "./report.js"

/*
 * What the REST API costs over its own SQL. A database of OWNERS owners with BOTS_PER_OWNER bots
 * each, USERS users and MESSAGES messages spread over them (rows written straight into the
 * projection tables); then, at CONCURRENCY requests in flight:
 * - api.users / api.analytics: GET /bots/{id}/users?limit=50 and /bots/{id}/analytics (30 days)
 *   over HTTP with an owner token (token check, a transaction as botfleet_api under row-level
 *   security, JSON), p50/p99 ms and req/s;
 * - the baseline: the same queries run directly on `pg` as the login (no HTTP, no role, no RLS).
 * ratio of req/s: API / direct (the target: >= 0.7). BENCH_SHORT=1: a tenth of the data.
 */

const SHORT = process.env["BENCH_SHORT"] === "1"
const OWNERS = 50
const BOTS_PER_OWNER = 2
const USERS = SHORT ? 10_000 : 100_000
const MESSAGES = SHORT ? 100_000 : 1_000_000
const REQUESTS = SHORT ? 600 : 3_000
const CONCURRENCY = 16
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

const measure = async (label: string, fn: (i: number) => Promise<void>) => {
  for (let i = 0; i < 50; i++) await fn(i) // warm-up
  const times: Array<number> = []
  let next = 0
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < REQUESTS) {
        const i = next++
        const s = performance.now()
        await fn(i)
        times.push(performance.now() - s)
      }
    })
  )
  const seconds = (performance.now() - t0) / 1000
  times.sort((a, b) => a - b)
  return { label, p50: Math.round(percentile(times, 50) * 10) / 10, p99: Math.round(percentile(times, 99) * 10) / 10, rps: Math.round(REQUESTS / seconds) }
}

export const run = async (): Promise<void> => {
  const db = await createScratchDatabase(adminUrl, "bf_bench_api")
  const sql = makePgSql(db.url, { max: CONCURRENCY })
  const app = Fastify()
  try {
    await migrate(sql)
    await seed(sql)
    const tokens: Array<string> = []
    for (let o = 0; o < OWNERS; o++) {
      await Effect.runPromise(addOwner(sql, `owner-${o}`, null))
      tokens.push((await Effect.runPromise(createToken(sql, { ownerId: `owner-${o}`, scope: "read", expiresAt: null, label: null }))).token)
    }
    const config = await Effect.runPromise(loadConfig({ BOTFLEET_SECRET_KEY: Buffer.alloc(32, 1).toString("base64"), LOG_LEVEL: "warning" }))
    const log = makeMemoryEventLog({ partitions: 16 })
    await app.register(
      restApi({
        sql, log, inbox: makeMemoryInbox(), writes: makeBotWrites({ config, log, sql, node: () => null }), partitions: 16,
        retryDeadLetter: () => Effect.void, anchorKey: new Uint8Array(32), nodeId: "bench", rateLimitPerMinute: 0,
        authenticate: makeAuthenticator(sql)
      })
    )
    const base = await app.listen({ host: "127.0.0.1", port: 0 })
    // request i: owner i % OWNERS, one of its bots
    const botOf = (i: number) => { const o = i % OWNERS; return { o, bot: `bot-${o + OWNERS * (i % BOTS_PER_OWNER)}` } }
    const get = async (i: number, path: (bot: string) => string) => {
      const { o, bot } = botOf(i)
      const res = await fetch(`${base}/api/v1${path(bot)}`, { headers: { authorization: `Bearer ${tokens[o]}` } })
      if (res.status !== 200) throw new Error(`${path(bot)} answered ${res.status}: ${await res.text()}`)
      await res.arrayBuffer()
    }
    const today = new Date().toISOString().slice(0, 10)
    const from = new Date(Date.now() - 29 * 86_400_000).toISOString().slice(0, 10)
    const usersSql = (bot: string) => sql.query(
      `SELECT user_id, first_name, last_name, username, language_code, first_seen_at::text, last_seen_at::text, blocked_at::text, messages_in
         FROM bot_users WHERE bot_id = $1 ORDER BY user_id LIMIT 51`, [bot])
    const analyticsSql = (bot: string) => readAnalytics(sql, bot, from, today)
    const env = { owners: OWNERS, bots: OWNERS * BOTS_PER_OWNER, users: USERS, messages: MESSAGES, concurrency: CONCURRENCY, requests: REQUESTS }
    for (const [name, apiPath, direct] of [
      ["api.users", (bot: string) => `/bots/${bot}/users?limit=50`, usersSql],
      ["api.analytics", (bot: string) => `/bots/${bot}/analytics?from=${from}&to=${today}`, analyticsSql]
    ] as const) {
      const viaApi = await measure(name, (i) => get(i, apiPath))
      const viaSql = await measure(`${name}.sql`, async (i) => void (await direct(botOf(i).bot)))
      report({ bench: name, unit: "req/s", value: viaApi.rps, baseline: "the same SQL directly on pg (no HTTP, no token check, no transaction or role)", baselineValue: viaSql.rps, p50Ms: viaApi.p50, p99Ms: viaApi.p99, sqlP50Ms: viaSql.p50, sqlP99Ms: viaSql.p99, ...env })
    }
  } finally {
    await app.close()
    await sql.close()
    await db.drop()
  }
}
