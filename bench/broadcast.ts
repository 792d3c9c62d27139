import { randomBytes } from "node:crypto"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { makeRedisInbox } from "../src/actors/redisInbox.js"
import { makeMemorySnapshotStore } from "../src/actors/snapshotStore.js"
import { createBroadcast, listBroadcasts } from "../src/broadcast/broadcastStore.js"
import { runBroadcastsOnce } from "../src/broadcast/runner.js"
import { migrate } from "../src/db/migrator.js"
import { makePgSql } from "../src/db/pgSql.js"
import { makeRedisEventLog } from "../src/events/redisEventLog.js"
import { runBot } from "../src/telegram/botRunner.js"
import { BotModuleRegistry } from "../src/telegram/bots/registry.js"
import { startSandbox } from "../src/telegram/sandbox/server.js"
import { Sender } from "../src/telegram/sender.js"
import { createScratchDatabase } from "../test/support/databases.js"
import { deleteKeysUnder } from "../test/support/redisCleanup.js"
import { report } from "./report.js"

/**
 * `npm run bench -- broadcast`: one bot broadcasts to N users on the sandbox, whose limits are
 * Telegram's (30 messages/s per bot, 429 beyond). Reports the sending rate against that limit
 * (the ratio should stay at or under 1, within 5%), the 429s the sandbox answered, and how many
 * users got the message twice (must be 0) across a bot restart half-way.
 * BENCH_SHORT=1: 300 users; BENCH_BROADCAST_USERS to set N (the 100k takes ~56 minutes).
 */
const url = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"
const adminUrl = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"
const USERS = Number(process.env["BENCH_BROADCAST_USERS"] ?? (process.env["BENCH_SHORT"] ? 300 : 3000))

export const run = async (): Promise<void> => {
  const prefix = `bench-broadcast-${randomBytes(4).toString("hex")}`
  const db = await createScratchDatabase(adminUrl, "bf_bench_broadcast")
  const sql = makePgSql(db.url, { max: 4 })
  await migrate(sql)
  const redis = new Redis(url)
  const log = await Effect.runPromise(makeRedisEventLog({ url, prefix }))
  const inbox = makeRedisInbox({ redis, prefix })
  const sandbox = await startSandbox()
  try {
    const tg = sandbox.world.createBot({ username: "bench_bot" })
    const lease = (await Effect.runPromise(log.acquireLease("bench_bot", "bench", 10_000)))!
    await Effect.runPromise(log.append({ botId: "bench_bot", expectedVersion: 0, fence: lease.fence, events: [{ data: { _tag: "BotRegistered", ownerId: "bench", name: "bench_bot", kind: "builtin", mode: "sandbox", config: {} }, occurredAt: new Date().toISOString(), correlationId: "b", actor: "bench" }] }))
    await Effect.runPromise(log.releaseLease(lease))
    const ids = Array.from({ length: USERS }, (_, i) => 10_000 + i)
    for (const id of ids) sandbox.world.say("bench_bot", { userId: id, text: "/start" })
    tg.pending.length = 0
    await sql.query(
      "INSERT INTO bot_users (bot_id, user_id, owner_id, first_name, language_code, first_seen_at, last_seen_at) SELECT 'bench_bot', u, 'bench', 'U', 'en', now(), now() FROM unnest($1::bigint[]) u",
      [ids]
    )
    const b = await createBroadcast(sql, { botId: "bench_bot", ownerId: "bench", text: "Hello all", segment: "all", notBefore: new Date() })
    const deps = { log, inbox, snapshots: makeMemorySnapshotStore(), handlerFor: new BotModuleRegistry().handlerFor }
    let bot = await runBot({ deps, botId: "bench_bot", nodeId: "n1", token: tg.token, apiRoot: sandbox.apiRoot, sender: new Sender() })
    const t0 = Date.now()
    let restarted = false
    for (;;) {
      await runBroadcastsOnce({ sql, log, inbox }, { window: 60, now: new Date() })
      const row = (await listBroadcasts(sql, "bench_bot"))[0]!
      if (row.state === "done") break
      if (!restarted && tg.sent.length >= USERS / 2) {
        // the node goes away half-way (drain) and the runner loses its place: all must still arrive once
        restarted = true
        await bot.stop("bench restart")
        await sql.query("UPDATE broadcasts SET next_seq = GREATEST(0, next_seq - 60) WHERE broadcast_id = $1", [b.broadcastId])
        bot = await runBot({ deps, botId: "bench_bot", nodeId: "n2", token: tg.token, apiRoot: sandbox.apiRoot, sender: new Sender() })
      }
      await new Promise((r) => setTimeout(r, 250))
    }
    await bot.stop()
    const dates = tg.sent.map((m) => m.date)
    const seconds = Math.max(1, (Date.now() - t0) / 1000)
    const perUser = new Map<number, number>()
    for (const m of tg.sent) perUser.set(m.chat.id, (perUser.get(m.chat.id) ?? 0) + 1)
    report({
      bench: "broadcast rate (one bot, sandbox with Telegram's limits)",
      unit: "messages/s",
      value: Math.round((tg.sent.length / seconds) * 10) / 10,
      baseline: "Telegram's per-bot limit",
      baselineValue: 30,
      users: USERS,
      sent: tg.sent.length,
      doubleSent: [...perUser.values()].filter((n) => n > 1).length,
      missing: ids.filter((id) => !perUser.has(id)).length,
      sandbox429: tg.calls.get("sendMessage")! - tg.sent.length,
      firstToLastS: dates.length > 0 ? dates.at(-1)! - dates[0]! : 0
    })
  } finally {
    await sandbox.close()
    await Effect.runPromise(inbox.close)
    await Effect.runPromise(log.close)
    await deleteKeysUnder(redis, prefix)
    redis.disconnect()
    await sql.close()
    await db.drop()
  }
}
