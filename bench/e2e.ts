import { randomBytes } from "node:crypto"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { Composer, Telegraf } from "telegraf"
import type { ActorDeps } from "../src/actors/actor.js"
import type { Json } from "../src/actors/decider/mergePatch.js"
import type { KnownUser } from "../src/actors/decider/state.js"
import type { BotView } from "../src/actors/decider/updateHandler.js"
import { makeRedisInbox } from "../src/actors/redisInbox.js"
import { makeMemorySnapshotStore } from "../src/actors/snapshotStore.js"
import { makeRedisEventLog } from "../src/events/redisEventLog.js"
import { makeBotApi } from "../src/telegram/botApi.js"
import { runBot } from "../src/telegram/botRunner.js"
import type { RunningBot } from "../src/telegram/botRunner.js"
import { builtinComposer } from "../src/telegram/bots/builtin.js"
import type { BotContext } from "../src/telegram/bots/telegrafHandler.js"
import { BotModuleRegistry } from "../src/telegram/bots/registry.js"
import { registerWebhook, startIngress } from "../src/telegram/ingress.js"
import { startSandbox } from "../src/telegram/sandbox/server.js"
import type { Sandbox } from "../src/telegram/sandbox/server.js"
import type { MessageEvent } from "../src/telegram/sandbox/world.js"
import { Sender } from "../src/telegram/sender.js"
import { webhookSecretFor } from "../src/telegram/webhookSecret.js"
import { percentile, report } from "./report.js"
import { deleteKeysUnder } from "../test/support/redisCleanup.js"

/*
 * e2e: updates/s from "a user writes" (the sandbox queues the update and POSTs it to the bot's
 * webhook) to "the reply reached the sandbox", for BOTS bots × CHATS chats, sandbox limits off.
 *
 * botfleet: webhook → ingress (secret check, shape check) → Redis inbox → actor (decider +
 * built-in telegraf bot; the reply's intent appended, sent through the sender, its outcome appended
 * with the update's final step: two atomic appends per update) → sandbox. Durable and replayable.
 * Baseline, same run, same sandbox, same bot behaviour: 200 plain Telegraf webhook bots (one HTTP
 * server, webhookCallback per bot) with in-memory state and no persistence.
 *
 * Two figures each: saturated throughput (all updates queued at once), and latency p50/p99 at a
 * fixed offered rate (RATE updates/s for a few seconds).
 */

const BOTS = Number(process.env["BENCH_E2E_BOTS"] ?? 200)
const CHATS = 5
// sized to finish in about a minute on a quiet 2-core machine; raise with the variables
const BURST = Number(process.env["BENCH_E2E_UPDATES"] ?? 2000)
const RATE = Number(process.env["BENCH_E2E_RATE"] ?? 500)
const RATE_SECONDS = 3
const url = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"
const config = { keywords: [{ match: "ping", reply: "pong" }], commands: {}, personality: { tone: "plain" } }

/** Tracks when each user message was said and when its reply arrived (replies come in order per chat). */
const tracker = (sandbox: Sandbox, prefix: string) => {
  const said = new Map<string, number[]>()
  const latencies: number[] = []
  let replies = 0
  let last = 0
  const onMessage = (m: MessageEvent) => {
    if (!m.bot.startsWith(prefix) || m.edited) return
    const q = said.get(`${m.bot}:${m.message.chat.id}`)
    const t0 = q?.shift()
    if (t0 === undefined) return
    last = performance.now()
    latencies.push(last - t0)
    replies++
  }
  sandbox.world.on("message", onMessage)
  return {
    say: (bot: string, chatId: number) => {
      const k = `${bot}:${chatId}`
      const q = said.get(k) ?? []
      q.push(performance.now())
      said.set(k, q)
      sandbox.world.say(bot, { userId: chatId, text: "ping" })
    },
    reset: () => {
      latencies.length = 0
      replies = 0
    },
    get replies() {
      return replies
    },
    get last() {
      return last
    },
    latencies,
    stop: () => sandbox.world.off("message", onMessage)
  }
}

const waitFor = async (cond: () => boolean, timeoutMs: number) => {
  const until = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > until) throw new Error("benchmark timed out waiting for replies")
    await new Promise((r) => setTimeout(r, 5))
  }
}

/** Saturated run, then fixed-rate run; returns throughput and latencies of the fixed-rate run. */
const measure = async (sandbox: Sandbox, usernames: ReadonlyArray<string>, prefix: string) => {
  const t = tracker(sandbox, prefix)
  // warm-up: one message per bot
  for (const u of usernames) t.say(u, 1)
  await waitFor(() => t.replies >= usernames.length, 60_000)
  t.reset()

  const start = performance.now()
  for (let i = 0; i < BURST; i++) t.say(usernames[i % usernames.length]!, 1 + (Math.floor(i / usernames.length) % CHATS))
  await waitFor(() => t.replies >= BURST, 60_000)
  const throughput = Math.round(BURST / ((t.last - start) / 1000))
  t.reset()

  const total = RATE * RATE_SECONDS
  const tickMs = 10
  let sent = 0
  const t0 = performance.now()
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * RATE))
    while (sent < due) {
      t.say(usernames[sent % usernames.length]!, 1 + (Math.floor(sent / usernames.length) % CHATS))
      sent++
    }
    await new Promise((r) => setTimeout(r, tickMs))
  }
  await waitFor(() => t.replies >= total, 60_000)
  const sorted = [...t.latencies].sort((a, b) => a - b)
  t.stop()
  return { throughput, p50: Math.round(percentile(sorted, 50) * 10) / 10, p99: Math.round(percentile(sorted, 99) * 10) / 10 }
}

const baseline = async (sandbox: Sandbox) => {
  const handlers = new Map<string, ReturnType<Telegraf["webhookCallback"]>>()
  const server = createServer((req, res) => {
    const h = handlers.get(req.url ?? "")
    if (!h) {
      res.statusCode = 404
      return res.end()
    }
    void h(req, res)
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const usernames: string[] = []
  for (let i = 0; i < BOTS; i++) {
    const username = `plain${i}_bot`
    const sb = sandbox.world.createBot({ username })
    const bot = new Telegraf<BotContext>(sb.token, { telegram: { apiRoot: sandbox.apiRoot, webhookReply: false } })
    bot.botInfo = { id: sb.id, is_bot: true, first_name: username, username, can_join_groups: true, can_read_all_group_messages: false, supports_inline_queries: false }
    // the same behaviour, state in memory: users and sessions in Maps, nothing persisted
    const users = new Map<number, KnownUser>()
    const sessions = new Map<string, Record<string, unknown>>()
    const memory = new Composer<BotContext>()
    memory.use(async (ctx, next) => {
      const at = new Date().toISOString()
      // bot code reads users through the view: the plain Maps stand in for the keyed entries
      const state: BotView = { status: "running", ownerId: null, name: username, kind: "builtin", mode: "sandbox", config: {}, users, sessions: { get: (k: string) => sessions.get(k) as Json | undefined }, legacy: { get: () => undefined }, entries: { get: () => undefined } }
      Object.assign(ctx, { at, botState: state })
      const key = `${ctx.from?.id}:${ctx.chat?.id}`
      ctx.session = sessions.get(key)
      await next()
      if (ctx.session) sessions.set(key, ctx.session)
      if (ctx.from) users.set(ctx.from.id, { firstName: ctx.from.first_name, firstSeen: users.get(ctx.from.id)?.firstSeen ?? at, lastSeen: at, blocked: false })
    })
    bot.use(memory, builtinComposer(config))
    const path = `/tg/${i}`
    const secret = webhookSecretFor(randomBytes(32), String(i))
    handlers.set(path, bot.webhookCallback(path, { secretToken: secret }))
    await bot.telegram.setWebhook(`${base}${path}`, { secret_token: secret })
    usernames.push(username)
  }
  try {
    return await measure(sandbox, usernames, "plain")
  } finally {
    for (const u of usernames) sandbox.world.bot(u).webhook = null
    await new Promise((r) => server.close(r))
  }
}

const botfleet = async (sandbox: Sandbox) => {
  const prefix = `bench-e2e-${randomBytes(4).toString("hex")}`
  const redis = new Redis(url)
  const log = await Effect.runPromise(makeRedisEventLog({ url, prefix }))
  const inbox = makeRedisInbox({ redis, prefix })
  const deps: ActorDeps = { log, inbox, snapshots: makeMemorySnapshotStore(), handlerFor: new BotModuleRegistry().handlerFor }
  const key = randomBytes(32)
  const ingress = await startIngress({ inbox, botStatus: () => Effect.succeed("running" as const), secretFor: (id) => webhookSecretFor(key, id) })
  const sender = new Sender({ limits: false })
  const running: RunningBot[] = []
  const usernames: string[] = []
  try {
    for (let i = 0; i < BOTS; i++) {
      const botId = `fleet${i}`
      const username = `fleet${i}_bot`
      const sb = sandbox.world.createBot({ username })
      const lease = (await Effect.runPromise(log.acquireLease(botId, "bench", 120_000)))!
      await Effect.runPromise(
        log.append({
          botId,
          expectedVersion: 0,
          fence: lease.fence,
          events: [{ data: { _tag: "BotRegistered", ownerId: "bench", name: botId, kind: "builtin", mode: "webhook", config }, occurredAt: new Date().toISOString(), correlationId: "bench", actor: "system" }]
        })
      )
      await Effect.runPromise(registerWebhook(makeBotApi(sb.token, { apiRoot: sandbox.apiRoot }), { publicUrl: ingress.url, botId, secret: webhookSecretFor(key, botId) }))
      running.push(await runBot({ deps, botId, nodeId: "bench", token: sb.token, apiRoot: sandbox.apiRoot, sender, leaseTtlMs: 120_000 }))
      usernames.push(username)
    }
    return await measure(sandbox, usernames, "fleet")
  } finally {
    await Promise.all(running.map((r) => r.stop("bench done")))
    await ingress.close()
    await Effect.runPromise(inbox.close)
    await Effect.runPromise(log.close)
    // leave nothing behind in Redis
    await deleteKeysUnder(redis, prefix)
    redis.disconnect()
  }
}

export const run = async (): Promise<void> => {
  const sandbox = await startSandbox({ limits: false })
  try {
    const plain = await baseline(sandbox)
    const fleet = await botfleet(sandbox)
    const common = { bots: BOTS, chats: BOTS * CHATS, burst: BURST }
    report({ bench: "e2e.webhook_to_reply.throughput", unit: "updates/s", value: fleet.throughput, baseline: "plain telegraf webhook bots, in-memory state", baselineValue: plain.throughput, ...common })
    report({ bench: "e2e.webhook_to_reply.p50", unit: "ms", value: fleet.p50, baseline: "plain telegraf webhook bots, in-memory state", baselineValue: plain.p50, offeredRate: RATE })
    report({ bench: "e2e.webhook_to_reply.p99", unit: "ms", value: fleet.p99, baseline: "plain telegraf webhook bots, in-memory state", baselineValue: plain.p99, offeredRate: RATE, target: 50 })
  } finally {
    await sandbox.close()
  }
}
