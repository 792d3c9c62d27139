import Fastify from "fastify"
import type { FastifyInstance, FastifyPluginAsync } from "fastify"
import { Effect } from "effect"
import { addOwner, createToken, makeAuthenticator } from "../../src/api/auth/apiTokens.js"
import type { Authenticator } from "../../src/api/auth/apiTokens.js"
import type { ApiDeps } from "../../src/api/rest/apiContext.js"
import { makeBotWrites } from "../../src/api/rest/botWrites.js"
import { API_ROUTES, restApi } from "../../src/api/rest/restApi.js"
import { makeMemoryInbox } from "../../src/actors/memoryInbox.js"
import type { InboxService } from "../../src/actors/inbox.js"
import { retryOnPostgres } from "../../src/cli/commands/dlqRetry.js"
import { loadConfig } from "../../src/config.js"
import type { SqlClient } from "../../src/db/sql.js"
import type { DomainEvent } from "../../src/events/schema/envelope.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makeProjector } from "../../src/projections/projector.js"
import type { KeyCache } from "../../src/privacy/keyCache.js"
import { appendNewBot, newEvent } from "../support/events.js"

/*
 * A REST API over a test's own database and an in-memory log, served by a fastify of its own
 * (inject: no port), with owners alice and bob, each with a bot that chatted with two users.
 */

const day = (d: number, h = 10, m = 0, s = 0) => new Date(Date.UTC(2026, 10, d, h, m, s)).toISOString()

export const chatFacts = (ownerId: string, prefix: string, firstUser: number): ReadonlyArray<{ data: DomainEvent; at: string }> => {
  const facts: Array<{ data: DomainEvent; at: string }> = [
    { data: { _tag: "BotRegistered", ownerId, name: `${prefix}_fixture_bot`, kind: "builtin", mode: "sandbox", tokenCiphertext: "v1:sealed", config: { greeting: "hi" } }, at: day(2, 9) }
  ]
  let message = 1
  // user 1 talks on days 2 and 10 (a returning user), user 2 on day 10 only
  for (const [user, first, d] of [[firstUser, `${prefix}-Ada`, 2], [firstUser, `${prefix}-Ada`, 10], [firstUser + 1, `${prefix}-Grace`, 10]] as const) {
    facts.push({ data: { _tag: "UserSeen", userId: user, firstName: first, at: day(d) }, at: day(d) })
    const m = message++
    facts.push({ data: { _tag: "MessageReceived", chatId: user, chatType: "private", userId: user, messageId: m, text: `hello from ${first}`, at: day(d) }, at: day(d) })
    facts.push({ data: { _tag: "ReplySent", chatId: user, messageId: 1000 + m, text: `hi ${first}`, inReplyTo: m, at: day(d, 10, 0, 2) }, at: day(d, 10, 0, 2) })
  }
  return facts
}

export const seedBot = async (log: EventLogService, botId: string, facts: ReadonlyArray<{ data: DomainEvent; at: string }>) =>
  appendNewBot(log, botId, facts.map((f, i) => newEvent(f.data, { occurredAt: f.at, correlationId: `c-${botId}-${i}` })))

export const project = (log: EventLogService, sql: SqlClient, partitions: number) =>
  Effect.runPromise(Effect.forEach(Array.from({ length: partitions }, (_, p) => p), (p) => makeProjector({ log, sql, partition: p, blockMs: 0 }).step))

export const SECRET_KEY = Buffer.alloc(32, 7).toString("base64")

export const testConfig = (dataDir: string, partitions: number, env: Record<string, string> = {}) =>
  Effect.runPromise(loadConfig({ BOTFLEET_SECRET_KEY: SECRET_KEY, DATA_DIR: dataDir, PARTITIONS: String(partitions), LOG_LEVEL: "warning", ...env }))

export interface TestApi {
  readonly app: FastifyInstance
  readonly lines: Array<Readonly<Record<string, unknown>>>
  readonly authenticate: Authenticator
  /** Moves the authenticator's clock on (its token cache: API_TOKEN_CACHE_SECONDS). */
  readonly advanceClock: (ms: number) => void
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are read as loosely as a client would
  readonly call: (method: "GET" | "POST" | "PATCH" | "DELETE", url: string, token: string | null, body?: unknown) => Promise<{ status: number; body: any; headers: Record<string, unknown> }>
}

export const startTestApi = async (o: { sql: SqlClient; log: EventLogService; dataDir: string; partitions: number; rateLimitPerMinute?: number; tokenCacheMs?: number; env?: Record<string, string>; extra?: (deps: ApiDeps) => FastifyPluginAsync; inbox?: InboxService; forgetSettleMs?: number; keyCache?: KeyCache }): Promise<TestApi> => {
  const config = await testConfig(o.dataDir, o.partitions, o.env)
  const lines: Array<Readonly<Record<string, unknown>>> = []
  const deps: ApiDeps = {
    sql: o.sql,
    log: o.log,
    inbox: o.inbox ?? makeMemoryInbox(),
    writes: makeBotWrites({ config, log: o.log, sql: o.sql, node: () => null, ...(o.forgetSettleMs !== undefined ? { forgetSettle: o.forgetSettleMs } : {}) }),
    partitions: o.partitions,
    retryDeadLetter: (d) => retryOnPostgres(o.sql, d),
    anchorKey: new Uint8Array(32),
    nodeId: "test-node",
    rateLimitPerMinute: o.rateLimitPerMinute ?? 0,
    logRequest: (l) => void lines.push(l),
    ...(o.keyCache ? { keyCache: o.keyCache } : {})
  }
  let skew = 0
  const authenticate = makeAuthenticator(o.sql, { cacheMs: o.tokenCacheMs ?? 5_000, now: () => Date.now() + skew })
  const app = Fastify()
  await app.register(restApi({ ...deps, authenticate }, o.extra ? [...API_ROUTES, o.extra] : API_ROUTES))
  await app.ready()
  return {
    app,
    lines,
    authenticate,
    advanceClock: (ms) => void (skew += ms),
    call: async (method, url, token, body) => {
      const res = await app.inject({
        method,
        url,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { "content-type": "application/json" } : {}) },
        ...(body !== undefined ? { payload: JSON.stringify(body) } : {})
      })
      return { status: res.statusCode, body: res.body === "" ? null : JSON.parse(res.body), headers: res.headers }
    }
  }
}

export const makeTokens = async (sql: SqlClient) => {
  const run = <A, E>(e: Effect.Effect<A, E>) => Effect.runPromise(e)
  await run(addOwner(sql, "alice", "Alice"))
  await run(addOwner(sql, "bob", null))
  const make = (ownerId: string | null, scope: "read" | "write" | "admin", expiresAt: Date | null = null) => run(createToken(sql, { ownerId, scope, expiresAt, label: null }))
  return {
    aliceRead: (await make("alice", "read")).token,
    aliceWrite: (await make("alice", "write")).token,
    bobWrite: (await make("bob", "write")).token,
    admin: (await make(null, "admin")).token,
    make
  }
}
