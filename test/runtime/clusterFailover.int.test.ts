import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Exit, Option, Redacted, Scope } from "effect"
import type { Cluster } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { loadConfig } from "../../src/config.js"
import { makePgSql } from "../../src/db/pgSql.js"
import type { SqlClient } from "../../src/db/sql.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { partitionOf, partitionSlot, redisKeys } from "../../src/events/partition.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import { newEvent, updateReceived } from "../support/events.js"
import { openRedis } from "../../src/health/redisHealth.js"
import { makeFleetDirectory } from "../../src/runtime/fleetDirectory.js"
import { registerBot } from "../../src/runtime/registerBot.js"
import { sendControl } from "../../src/runtime/control.js"
import { askNodes } from "../../src/runtime/settingsControl.js"
import { openStores } from "../../src/runtime/stores.js"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { makeTokenVault } from "../../src/telegram/tokenVault.js"
import { captureCli } from "../cli/support.js"
import { captureDependencyLogs } from "../support/captureLogs.js"
import { createTestDatabase } from "../support/db.js"
import { startPrivateRedisCluster } from "../support/privateRedisCluster.js"
import type { PrivateRedisCluster } from "../support/privateRedisCluster.js"
import { freePort } from "../support/privateServers.js"
import { startWebhookLoad, summarize } from "../support/webhookLoad.js"
import type { DrillBot, SentUpdate } from "../support/webhookLoad.js"

/*
 * botfleet on a real Redis Cluster (issue 16): a `botfleet run` process (worker threads) with
 * REDIS_CLUSTER_NODES naming a private 3-master + 3-replica cluster, under a steady load of
 * webhook updates to bots spread over every master. End to end first (every acknowledged update
 * answered once, the projections catch up: every Lua call and multi-key command of the node ran on
 * one slot, or the cluster would have refused it with CROSSSLOT), then two failovers under load:
 * a master killed with SIGKILL (its replica promoted after the node timeout) and a graceful
 * CLUSTER FAILOVER on another master's replica. The node must live through both; nothing
 * acknowledged after the failover may be lost, nothing may be answered twice; what was lost
 * across the kill is measured and printed (docs/redis.md, "What a failover loses").
 */

const bin = fileURLToPath(new URL("../../bin/botfleet.js", import.meta.url))
const BOTS: ReadonlyArray<DrillBot> = Array.from({ length: 6 }, (_, i) => ({ botId: `cdrill-${i}`, username: `cdrill_${i}_bot` }))
const RATE = 20
const PREFIX = "cdrill"

let cluster: PrivateRedisCluster
let db: { url: string; drop: () => Promise<void> }
let telegram: Sandbox
let dataDir: string
let node: ChildProcess
let ingressUrl: string
let log: EventLogService
let sql: SqlClient
const secretKey = randomBytes(32)
const logLines: Array<Record<string, unknown>> = []
const rawStderr: string[] = []
let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null
/** The node's settings: the CLI runs with the same ones. */
let nodeEnv: Record<string, string> = {}
const ownLogs = captureDependencyLogs()

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const until = async (what: string, cond: () => boolean | Promise<boolean>, ms: number) => {
  const end = Date.now() + ms
  while (!(await cond())) {
    if (exited !== null) throw new Error(`${what}: the node exited (${JSON.stringify(exited)}); its last lines:\n${rawStderr.slice(-15).join("\n")}`)
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`)
    await sleep(200)
  }
}

const repliesIn = (u: SentUpdate) => telegram.world.messages(u.bot.username, u.chatId).length
const knowChat = (bot: DrillBot, chatId: number) => {
  telegram.world.bot(bot.username).chats.set(chatId, { id: chatId, type: "private", first_name: "Drill" })
}

const archiveMatchesStreams = async () => {
  const { rows } = await sql.query<{ bot_id: string; n: number; top: number }>("SELECT bot_id, count(*)::int AS n, max(version) AS top FROM events_archive GROUP BY bot_id")
  for (const b of BOTS) {
    const version = await Effect.runPromise(log.streamVersion(b.botId))
    const row = rows.find((r) => r.bot_id === b.botId)
    if (!row || row.n !== version || row.top !== version) return false
  }
  return true
}

const masterOfBot = (botId: string) => cluster.masterOf(partitionSlot(partitionOf(botId, 16)))

/** Load for `loadMs`, `fault` after 3 s; then every acknowledged update must be answered. Returns the sent updates and when the fault ended. */
const drill = async (name: string, firstChatId: number, loadMs: number, fault: () => Promise<void>) => {
  const load = startWebhookLoad({ ingressUrl, secretKey, bots: BOTS, rate: RATE, firstChatId, beforeSend: knowChat })
  const started = Date.now()
  await sleep(3000)
  const faultFrom = Date.now()
  await fault()
  const faultTo = Date.now()
  await sleep(Math.max(0, loadMs - (Date.now() - started)))
  await load.stop({ abandon: exited !== null })
  expect(exited, `${name}: the node exited; its last lines:\n${rawStderr.slice(-15).join("\n")}`).toBeNull()
  const acked = load.sent.filter((u) => u.acked)
  // acknowledged once the fault was over: must all be answered
  const ackedAfter = acked.filter((u) => u.attempts.some((a) => a.at >= faultTo && a.status === 200))
  await until(`${name}: every update acknowledged after the failover answered`, () => ackedAfter.every((u) => repliesIn(u) > 0), 60_000)
  // the rest get a little longer to show up (or not: a kill may lose what the old master had not replicated)
  await until(`${name}: every acknowledged update answered`, () => acked.every((u) => repliesIn(u) > 0), 15_000).catch(() => undefined)
  await sleep(1000)
  const summary = {
    drill: name,
    ...summarize(load.sent, repliesIn),
    ackedAfterFailover: ackedAfter.length,
    lostAfterFailover: ackedAfter.filter((u) => repliesIn(u) === 0).length,
    unavailableMs: faultTo - faultFrom,
    crashed: exited !== null
  }
  console.log(JSON.stringify(summary))
  return { summary, sent: load.sent }
}

beforeAll(async () => {
  ;[cluster, db, telegram] = await Promise.all([startPrivateRedisCluster({ nodeTimeoutMs: 1000 }), createTestDatabase("cluster_failover"), startSandbox({ limits: false })])
  dataDir = await mkdtemp(join(tmpdir(), "bf-cluster-"))
  const port = await freePort()
  ingressUrl = `http://127.0.0.1:${port}`
  const nodes = cluster.nodes.map((n) => `127.0.0.1:${n.port}`).join(",")
  const env: Record<string, string> = {
    DATABASE_URL: db.url,
    // blank: unset (the cluster alone names the Redis)
    REDIS_URL: "",
    REDIS_CLUSTER_NODES: nodes,
    REDIS_PREFIX: PREFIX,
    BOTFLEET_SECRET_KEY: secretKey.toString("base64"),
    DATA_DIR: dataDir,
    HTTP_PORT: String(port),
    PUBLIC_URL: ingressUrl,
    TELEGRAM_API_ROOT: telegram.apiRoot,
    WORKER_THREADS: "2",
    NODE_ID: "cluster-node",
    LOG_LEVEL: "info",
    // the trimmer runs on the cluster too: partition-log entries archived and older than 5 s go
    HOT_LOG_TRIM_INTERVAL_MS: "2000",
    HOT_LOG_MAX_AGE: "5s"
  }
  nodeEnv = env
  const config = await Effect.runPromise(loadConfig(env))
  expect(Redacted.value(Option.getOrThrow(config.redisUrl))).toMatch(/^redis\+cluster:\/\//)
  const scope = await Effect.runPromise(Scope.make())
  try {
    const stores = await Effect.runPromise(Scope.extend(openStores(config), scope))
    for (const b of BOTS) {
      const tg = telegram.world.createBot({ username: b.username })
      await Effect.runPromise(
        registerBot({
          log: stores.log,
          vault: makeTokenVault(config.secretKey),
          directory: makeFleetDirectory(stores.sql),
          nodeId: "cluster-setup",
          bot: { botId: b.botId, ownerId: "drill-owner", name: b.username, kind: "builtin", mode: "webhook", token: Redacted.make(tg.token), config: { fallback: "noted" } }
        })
      )
    }
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
  log = await Effect.runPromise(makeRedisEventLog({ url: cluster.url, prefix: PREFIX, partitions: 16 }))
  sql = makePgSql(db.url, { max: 2, applicationName: "cluster-observer" })

  node = spawn(process.execPath, [bin, "run", "--no-sandbox"], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })
  node.on("exit", (code, signal) => (exited = { code, signal }))
  let partial = ""
  node.stderr!.on("data", (chunk: Buffer) => {
    const text = partial + chunk.toString("utf8")
    const lines = text.split("\n")
    partial = lines.pop() ?? ""
    for (const line of lines) {
      rawStderr.push(line)
      try {
        logLines.push(JSON.parse(line) as Record<string, unknown>)
      } catch {
        logLines.push({ message: `(not JSON) ${line}` })
      }
    }
  })
  node.stdout!.resume()
  await until("the node is ready", () => logLines.some((l) => l["message"] === "botfleet node ready"), 90_000)
  await until("the bots' webhooks are set", () => BOTS.every((b) => telegram.world.bot(b.username).webhook !== null), 60_000)
}, 240_000)

afterAll(async () => {
  if (node && exited === null) {
    node.kill("SIGTERM")
    await until("the node stops", () => exited !== null, 30_000).catch(() => node.kill("SIGKILL"))
  }
  await sql?.close()
  if (log) await Effect.runPromise(log.close)
  await telegram?.close()
  await cluster?.close()
  await db?.drop()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
  ownLogs.stop()
}, 60_000)

describe("botfleet run on a Redis Cluster", () => {
  it("end to end: bots on every master answer every acknowledged update once, and the projections archive every event", async () => {
    const masters = new Set(await Promise.all(BOTS.map((b) => masterOfBot(b.botId))))
    expect(masters.size).toBeGreaterThanOrEqual(2)
    const { summary } = await drill("steady", 10_000, 6_000, async () => undefined)
    expect(summary.tried).toBeGreaterThan(50)
    expect(summary.acknowledged).toBe(summary.tried)
    expect(summary.lost).toBe(0)
    expect(summary.doubled).toBe(0)
    await until("projections caught up", archiveMatchesStreams, 60_000)
    expect(rawStderr.filter((l) => /CROSSSLOT|Unhandled|\[ioredis\]/.test(l))).toEqual([])
    // the control channel over the cluster: the node hears a live-settings request and answers
    const described = await Effect.runPromise(askNodes({ redisUrl: cluster.url, prefix: PREFIX, timeoutMs: 10_000 }, { _tag: "DescribeSettings", target: "*" }))
    expect(described).toMatchObject({ heardBy: 1, missing: 0 })
    expect(described.replies.map((r) => r.nodeId)).toEqual(["cluster-node"])
    const set = await Effect.runPromise(askNodes({ redisUrl: cluster.url, prefix: PREFIX, timeoutMs: 10_000 }, { _tag: "SetSetting", target: "cluster-node", name: "ACTIVATIONS_PER_SECOND", value: "150" }))
    expect(set.replies[0]?.change).toMatchObject({ name: "ACTIVATIONS_PER_SECOND", value: "150" })
    // and a bot command: the holder's actor applies it and answers with the bot's new version
    const before = await Effect.runPromise(log.streamVersion(BOTS[1]!.botId))
    const configured = await Effect.runPromise(
      sendControl({ redisUrl: cluster.url, prefix: PREFIX, nodeId: "cluster-node", timeoutMs: 15_000 }, { _tag: "Configure", botId: BOTS[1]!.botId, patch: { fallback: "noted" } })
    )
    expect(configured.heardBy).toBe(1)
    expect(configured.version).toBeGreaterThan(before)
    // the CLI on the cluster: status reads the log, the inboxes and the groups of every partition
    const { NODE_ID: _node, ...cliEnv } = nodeEnv
    const status = await captureCli({ ...cliEnv, LOG_LEVEL: "warning" }, ["status", "--json"])
    expect(status.err).toBe("")
    expect(status.code).toBe(0)
    const parsed = JSON.parse(status.out) as { mode: string; bots: Array<{ botId: string; state: string }>; partitions: ReadonlyArray<unknown> }
    expect(parsed.mode).toBe("production")
    expect(parsed.bots.map((b) => b.botId).sort()).toEqual(BOTS.map((b) => b.botId).sort())
    expect(parsed.partitions).toHaveLength(16)
  }, 120_000)

  it("a master killed under load: its replica takes over, the node lives, nothing acknowledged after the failover is lost, nothing is doubled", async () => {
    const victim = await masterOfBot(BOTS[0]!.botId)
    const { summary } = await drill("kill-master", 20_000, 20_000, async () => {
      await cluster.kill(victim)
      // the cluster promotes the replica after its node timeout (1 s here) and an election
      await until("a new master serves the killed master's slots", async () => (await masterOfBot(BOTS[0]!.botId)) !== victim, 30_000)
      await cluster.waitHealthy(30_000)
    })
    expect(summary.crashed).toBe(false)
    expect(summary.ackedAfterFailover).toBeGreaterThan(0)
    expect(summary.lostAfterFailover).toBe(0)
    expect(summary.doubled).toBe(0)
    // every update was taken in the end (Telegram's redelivery covers the 503s of the failover)
    expect(summary.acknowledged).toBe(summary.tried)
    // only 200, 503 (the inbox's master unreachable) or a delivery that timed out on this loaded
    // machine (delivered again, as Telegram does): no update refused for good
    expect(Object.keys(summary.statuses).filter((s) => s !== "200" && s !== "503" && s !== "timeout")).toEqual([])
    await until("projections caught up", archiveMatchesStreams, 60_000)
    for (const b of BOTS) {
      const events = await Effect.runPromise(log.readStream(b.botId))
      expect(events.filter((e) => e.data._tag === "BotGaveUp"), b.botId).toEqual([])
      expect((await Effect.runPromise(log.readLease(b.botId)))?.nodeId, b.botId).toBe("cluster-node")
    }
    expect(rawStderr.filter((l) => /CROSSSLOT|Unhandled|\[ioredis\]/.test(l))).toEqual([])
  }, 180_000)

  it("a graceful CLUSTER FAILOVER under load loses nothing and doubles nothing", async () => {
    // a bot whose master still has a replica (the killed master's replica was promoted and has none)
    let bot: DrillBot | null = null
    let replica = 0
    for (const b of BOTS) {
      const found = await cluster.replicaOf(await masterOfBot(b.botId)).catch(() => null)
      if (found !== null) {
        bot = b
        replica = found
        break
      }
    }
    expect(bot).not.toBeNull()
    const { summary } = await drill("cluster-failover", 40_000, 15_000, async () => {
      const r = cluster.client(replica)
      try {
        await r.connect()
        await r.cluster("FAILOVER")
      } finally {
        r.disconnect()
      }
      await until("the replica serves the slots", async () => (await masterOfBot(bot!.botId)) === replica, 30_000)
    })
    expect(summary.crashed).toBe(false)
    expect(summary.lost).toBe(0)
    expect(summary.doubled).toBe(0)
    expect(summary.acknowledged).toBe(summary.tried)
    await until("projections caught up", archiveMatchesStreams, 60_000)
    // the control channel still reaches the node through the cluster (its subscriber moved off a failed node)
    const probe = openRedis(cluster.url, "probe") as Cluster
    try {
      await probe.ping()
      const subscribers = async () => {
        const counts = await Promise.all(probe.nodes("all").map((n) => n.pubsub("NUMSUB", `${PREFIX}:control`).catch(() => ["", 0]) as Promise<[string, number]>))
        return counts.reduce((a, c) => a + Number(c[1]), 0)
      }
      await expect.poll(subscribers, { timeout: 15_000 }).toBe(1)
      // and the trimmer worked through the partition logs on every master: fewer entries than events
      const appended = (await Promise.all(BOTS.map((b) => Effect.runPromise(log.streamVersion(b.botId))))).reduce((a, b) => a + b, 0)
      const held = async () => (await Promise.all(Array.from({ length: 16 }, (_, p) => probe.xlen(redisKeys(PREFIX, p).log)))).reduce((a, b) => a + b, 0)
      await expect.poll(held, { timeout: 20_000 }).toBeLessThan(appended)
    } finally {
      probe.disconnect()
    }
  }, 180_000)

  it("measures what a master killed mid-append loses: appends its replica had not received; every append after the failover stays", async () => {
    // 16 bots whose partitions a master with a replica serves, each with its own writer
    let victim = 0
    for (const b of BOTS) {
      const master = await masterOfBot(b.botId)
      if ((await cluster.replicaOf(master).catch(() => null)) !== null) {
        victim = master
        break
      }
    }
    expect(victim).not.toBe(0)
    const bots: string[] = []
    for (let i = 0; bots.length < 16; i++) if ((await masterOfBot(`loss-${i}`)) === victim) bots.push(`loss-${i}`)
    let failedOver = Number.POSITIVE_INFINITY
    let killedAt = Number.POSITIVE_INFINITY
    // what each append was acknowledged with: its events' partition-log positions, which a lost
    // append's events do not have after the failover even if a later append reused its versions
    const acked: Array<{ botId: string; positions: ReadonlyArray<string>; at: number }> = []
    let refused = 0
    let unavailable = 0
    let stop = false
    const writer = async (botId: string) => {
      const lease = (await Effect.runPromise(log.acquireLease(botId, "loss-writer", 60_000)))!
      let version = await Effect.runPromise(log.streamVersion(botId))
      while (!stop) {
        // each append as soon as the previous one was acknowledged, as an actor appends
        const r = await Effect.runPromise(Effect.either(log.append({ botId, expectedVersion: version, fence: lease.fence, events: [1, 2, 3, 4].map(() => newEvent(updateReceived(version))) })))
        if (r._tag === "Right") {
          version = r.right.version
          acked.push({ botId, positions: r.right.positions, at: Date.now() })
        } else if (r.left._tag === "WrongExpectedVersion") {
          // the stream is shorter than what was acknowledged (a lost tail): go on from what is there
          refused++
          version = r.left.actual
        } else {
          unavailable++
          await sleep(50)
        }
      }
    }
    const writers = Promise.all(bots.map(writer))
    await sleep(1500)
    killedAt = Date.now()
    await cluster.kill(victim)
    await until("a new master serves the bots' slots", async () => (await masterOfBot(bots[0]!)) !== victim, 30_000)
    failedOver = Date.now()
    await sleep(2000)
    stop = true
    await writers
    const present = new Set<string>()
    for (const b of bots) for (const e of await Effect.runPromise(log.readStream(b))) present.add(e.position)
    const lost = (a: { positions: ReadonlyArray<string> }) => a.positions.some((p) => !present.has(p))
    const figures = {
      drill: "kill-master-appends",
      writers: bots.length,
      appendsAcknowledged: acked.length,
      beforeKill: acked.filter((a) => a.at < killedAt).length,
      afterFailover: acked.filter((a) => a.at > failedOver).length,
      lostAcknowledgedAppends: acked.filter((a) => a.at <= failedOver && lost(a)).length,
      refusedAsStale: refused,
      unavailableAttempts: unavailable,
      failoverMs: failedOver - killedAt
    }
    console.log(JSON.stringify(figures))
    expect(figures.afterFailover).toBeGreaterThan(0)
    // nothing acknowledged after the failover is lost
    expect(acked.filter((a) => a.at > failedOver && lost(a))).toEqual([])
    // and no version is held twice: each stream is gapless 1..n
    for (const b of bots) {
      const versions = (await Effect.runPromise(log.readStream(b))).map((e) => e.version)
      expect(versions).toEqual(Array.from({ length: versions.length }, (_, i) => i + 1))
    }
  }, 120_000)
})
