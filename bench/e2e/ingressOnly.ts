import { randomBytes } from "node:crypto"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { httpMetrics } from "../../src/api/httpMetrics.js"
import { countUpdateAccepted } from "../../src/metrics/registry.js"
import { makeRedisInbox } from "../../src/actors/redisInbox.js"
import { startIngress } from "../../src/telegram/ingress.js"
import { redisIngressStore } from "../../src/telegram/redisIngressStore.js"
import { redisUpdateDedupe } from "../../src/telegram/updateDedupe.js"
import { webhookSecretFor } from "../../src/telegram/webhookSecret.js"
import { deleteKeysUnder } from "../../test/support/redisCleanup.js"

/*
 * The webhook ingress alone, in a process of its own, as the node wires it in production mode
 * (secret check, shape check, one Redis script per update on an auto-pipelined connection, the
 * HTTP metrics hook and the accepted-updates counter), with
 * no actor, projector or other work beside it: what issue 13 compares with a bare fastify route.
 * Env: BENCH_INGRESS_KEY (base64 fleet key). Its bots are `b0`… (all running).
 */
const url = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"
const key = Buffer.from(process.env["BENCH_INGRESS_KEY"] ?? randomBytes(32).toString("base64"), "base64")
const prefix = `bench-ingress-${randomBytes(4).toString("hex")}`
const redis = new Redis(url)
const pipelined = new Redis(url, { enableAutoPipelining: true })
const inbox = makeRedisInbox({ redis, prefix })
const ingress = await startIngress({
  inbox,
  botStatus: () => Effect.succeed("running" as const),
  secretFor: (id) => webhookSecretFor(key, id),
  // the node's per-request metrics too: the route's timing histogram and the accepted-updates counter
  plugins: [httpMetrics],
  onAccepted: (botId) => countUpdateAccepted(botId, "webhook"),
  // BENCH_INGRESS_STEPS=1: the step-by-step path the node used before (EXISTS, XADD, SET on one connection)
  ...(process.env["BENCH_INGRESS_STEPS"] === "1" ? { dedupe: redisUpdateDedupe(redis, prefix) } : { store: redisIngressStore(pipelined, prefix) })
})
process.send!({ op: "listening", url: ingress.url })
process.on("disconnect", () => {
  void (async () => {
    await ingress.close()
    await deleteKeysUnder(redis, prefix)
    redis.disconnect()
    pipelined.disconnect()
    process.exit(0)
  })()
})
