import { randomBytes } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { createBroadcast, listBroadcasts } from "../src/broadcast/broadcastStore.js"
import { makePgSql } from "../src/db/pgSql.js"
import { makeRedisEventLog } from "../src/events/redisEventLog.js"
import { startSandbox } from "../src/telegram/sandbox/server.js"
import type { MessageEvent } from "../src/telegram/sandbox/world.js"
import { createScratchDatabase } from "../test/support/databases.js"
import { holders, isReady, registerWebhookBots, spawnNode, stopNode, until } from "../test/support/nodeFleet.js"
import type { NodeProcess } from "../test/support/nodeFleet.js"
import { deleteKeysUnder } from "../test/support/redisCleanup.js"
import { report } from "./report.js"

/**
 * `npm run bench -- broadcast-kill`: the broadcast bench across a real node kill. Two `botfleet
 * run` processes (production mode: Redis log, Postgres) share one bot whose users get a
 * broadcast on the sandbox (Telegram's limits: 30 messages/s per bot, 429 beyond); half-way the
 * node holding the bot is killed with SIGKILL (no drain, no lease release), and the other takes
 * the bot over once the lease expires (LEASE_TTL_MS 10 s) and finishes the broadcast from the
 * bot's stream. Figures:
 * - broadcast.kill.peakRate: the most messages the sandbox received in any 10 s window, against
 *   the 30/s limit (ratio at or under 1.05);
 * - broadcast.kill.sendingRate: messages/s over the time a node was sending (the takeover gap left
 *   out), against the limit;
 * - doubleSent and missing: users who got it twice (must be 0) or never (0).
 * BENCH_SHORT=1: 600 users; BENCH_BROADCAST_USERS to set N.
 */
const adminUrl = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"
const redisUrl = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"
const USERS = Number(process.env["BENCH_BROADCAST_USERS"] ?? (process.env["BENCH_SHORT"] ? 600 : 3000))
const TTL_MS = 10_000
const LIMIT = 30

export const run = async (): Promise<void> => {
  const db = await createScratchDatabase(adminUrl, "bf_bench_bcast_kill")
  const prefix = `bfb-bkill-${randomBytes(3).toString("hex")}`
  const dataDir = await mkdtemp(join(tmpdir(), "bf-bench-bkill-"))
  const telegram = await startSandbox()
  const env: Record<string, string> = {
    DATABASE_URL: db.url,
    REDIS_URL: redisUrl,
    REDIS_PREFIX: prefix,
    BOTFLEET_SECRET_KEY: randomBytes(32).toString("base64"),
    DATA_DIR: dataDir,
    TELEGRAM_API_ROOT: telegram.apiRoot,
    LEASE_TTL_MS: String(TTL_MS),
    LEASE_RENEW_MS: "1000",
    WORKER_THREADS: "1",
    LOG_LEVEL: "warning"
  }
  const log = await Effect.runPromise(makeRedisEventLog({ url: redisUrl, prefix, partitions: 16 }))
  const sql = makePgSql(db.url, { max: 2, applicationName: "bench-broadcast-kill" })
  const nodes: NodeProcess[] = []
  try {
    const bots = await registerWebhookBots(env, telegram, 1, "bk")
    const bot = bots[0]!
    const tg = telegram.world.bot(bot.username)
    const ids = Array.from({ length: USERS }, (_, i) => 10_000 + i)
    // every user has opened the bot (Telegram lets a bot write only to those); before any node runs, so no webhook gets these
    for (const id of ids) telegram.world.say(bot.username, { userId: id, text: "/start" })
    tg.pending.length = 0
    await sql.query(
      "INSERT INTO bot_users (bot_id, user_id, owner_id, first_name, language_code, first_seen_at, last_seen_at) SELECT $1, u, 'fleet-owner', 'U', 'en', now(), now() FROM unnest($2::bigint[]) u",
      [bot.botId, ids]
    )
    const sentAt: number[] = []
    const perUser = new Map<number, number>()
    telegram.world.on("message", (m: MessageEvent) => {
      if (m.edited || m.bot !== bot.username || m.message.text !== "Hello all") return
      sentAt.push(Date.now())
      perUser.set(m.message.chat.id, (perUser.get(m.message.chat.id) ?? 0) + 1)
    })
    const b = await createBroadcast(sql, { botId: bot.botId, ownerId: "fleet-owner", text: "Hello all", segment: "all", notBefore: new Date() })
    nodes.push(await spawnNode(env, "node-a"), await spawnNode(env, "node-b"))
    await until("both nodes ready", () => nodes.every(isReady), 120_000, nodes)

    await until("half the broadcast sent", () => sentAt.length >= USERS / 2, USERS * 1000, nodes)
    const holder = (await holders(log, bots)).get(bot.botId)
    const victim = nodes.find((n) => n.nodeId === holder)!
    const killedAt = Date.now()
    victim.child.kill("SIGKILL")
    await victim.exit
    const survivors = nodes.filter((n) => n !== victim)
    const state = async () => (await listBroadcasts(sql, bot.botId)).find((r) => r.broadcastId === b.broadcastId)!
    await until("the broadcast done on the other node", async () => (await state()).state === "done", USERS * 1000, survivors)
    const resumedAt = sentAt.find((t) => t > killedAt) ?? killedAt
    const row = await state()

    // the most messages in any 10 s window (two pointers over the sorted send times)
    let peak = 0
    for (let i = 0, j = 0; j < sentAt.length; j++) {
      while (sentAt[j]! - sentAt[i]! >= 10_000) i++
      peak = Math.max(peak, j - i + 1)
    }
    const sendingSeconds = (sentAt.at(-1)! - sentAt[0]! - (resumedAt - killedAt)) / 1000
    const common = {
      users: USERS,
      sent: sentAt.length,
      doubleSent: [...perUser.values()].filter((n) => n > 1).length,
      missing: ids.filter((id) => !perUser.has(id)).length,
      row: { sent: row.sent, blocked: row.blocked, failed: row.failed, pending: row.pending },
      sandbox429: tg.calls.get("sendMessage")! - tg.sent.length,
      takeoverS: Math.round((resumedAt - killedAt) / 100) / 10,
      loadAvg: loadavg()[0]!.toFixed(1)
    }
    report({ bench: "broadcast.kill.peakRate (most messages in any 10 s, /10)", unit: "messages/s", value: peak / 10, baseline: "Telegram's per-bot limit", baselineValue: LIMIT, ...common })
    report({ bench: "broadcast.kill.sendingRate (takeover gap left out)", unit: "messages/s", value: Math.round((sentAt.length / Math.max(1, sendingSeconds)) * 10) / 10, baseline: "Telegram's per-bot limit", baselineValue: LIMIT, ...common })
  } finally {
    await Promise.all(nodes.map((n) => stopNode(n, 20_000)))
    await telegram.close()
    await Effect.runPromise(log.close)
    const redis = new Redis(redisUrl)
    await deleteKeysUnder(redis, prefix)
    redis.disconnect()
    await sql.close()
    await db.drop()
    await rm(dataDir, { recursive: true, force: true })
  }
}
