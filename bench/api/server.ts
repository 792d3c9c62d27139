import { Effect } from "effect"
import Fastify from "fastify"
import { makeAuthenticator } from "../../src/api/auth/apiTokens.js"
import { makeBotWrites } from "../../src/api/rest/botWrites.js"
import { restApi } from "../../src/api/rest/restApi.js"
import { makeMemoryInbox } from "../../src/actors/memoryInbox.js"
import { loadConfig } from "../../src/config.js"
import { makePgSql } from "../../src/db/pgSql.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"

/*
 * The API server of `bench api`, in a process of its own: the node's REST API plugin (src/api/rest)
 * on a fastify of its own, as the node serves it — token checks with the node's default cache, the
 * per-token rate limit on (set high enough never to refuse: its cost is counted), one JSON request
 * log line made per request (counted, not written: what writing costs depends on where the log
 * goes) — over a `pg` pool of BENCH_API_POOL connections.
 */

const url = process.env["BENCH_API_DATABASE_URL"]!
const pool = Number(process.env["BENCH_API_POOL"] ?? "16")
const sql = makePgSql(url, { max: pool, applicationName: "bench-api-server" })
const config = await Effect.runPromise(loadConfig({ BOTFLEET_SECRET_KEY: Buffer.alloc(32, 1).toString("base64"), LOG_LEVEL: "warning" }))
const log = makeMemoryEventLog({ partitions: 16 })
let logged = 0
const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 })
await app.register(
  restApi({
    sql, log, inbox: makeMemoryInbox(), writes: makeBotWrites({ config, log, sql, node: () => null }), partitions: 16,
    retryDeadLetter: () => Effect.void, anchorKey: new Uint8Array(32), nodeId: "bench", rateLimitPerMinute: 1_000_000,
    logRequest: (line) => void (logged += JSON.stringify({ level: "INFO", ...line }).length + 1),
    authenticate: makeAuthenticator(sql, { cacheMs: config.apiTokenCacheSeconds * 1000 })
  })
)
const base = await app.listen({ host: "127.0.0.1", port: 0 })

const stop = async () => {
  await app.close()
  await sql.close()
  process.exit(0)
}
process.on("disconnect", () => void stop())
process.on("SIGTERM", () => void stop())
process.send!({ op: "listening", base })
// asked before and after a phase: the server's CPU time (all threads), and the log bytes made
process.on("message", (m: { id: number }) => {
  const cpu = process.cpuUsage()
  process.send!({ id: m.id, cpuMicros: cpu.user + cpu.system, logged })
})
