import { randomBytes, randomUUID } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Either, Logger } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { migrate } from "../../src/db/migrator.js"
import { makePgSql } from "../../src/db/pgSql.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import { DIVERGED_REASON, HELD_REASON, readDivergences } from "../../src/projections/divergence.js"
import { makeProjector } from "../../src/projections/projector.js"
import { captureCli } from "../cli/support.js"
import { appendFacts, received, registered } from "../projections/fixtures.js"
import { createTestDatabase } from "../support/db.js"
import { startPrivateRedisServer } from "../support/privateRedisServer.js"
import type { PrivateRedisServer } from "../support/privateRedisServer.js"

/*
 * Acknowledged appends and a Redis crash, on private redis-servers with AOF (never the shared one):
 * - strict mode (appendfsync always): the server killed with SIGKILL under load keeps every append
 *   it acknowledged;
 * - appendfsync everysec with the last second of the AOF lost (what a host crash does to writes not
 *   yet fsynced: reproduced by cutting the AOF back while the server is down): the bot goes on from
 *   what Redis kept, so versions the archive already holds come again with other events, and the
 *   projector reports the divergence instead of dropping them.
 */

const run = Effect.runPromise
const servers: PrivateRedisServer[] = []
afterAll(async () => {
  for (const s of servers) await s.close()
})

/** Fails fast while the server is down instead of queueing (an append in flight then fails: not acknowledged). */
const openLog = (url: string, prefix: string): Promise<EventLogService> =>
  run(makeRedisEventLog({ url, prefix, partitions: 2, redisOptions: { maxRetriesPerRequest: 0, retryStrategy: () => null } }))

describe("Redis durability", () => {
  it("strict mode: appendfsync always, a redis-server killed with SIGKILL mid-load loses no acknowledged append", async () => {
    const server = await startPrivateRedisServer("always")
    servers.push(server)
    const log = await openLog(server.url, "strict")
    const bots = Array.from({ length: 8 }, (_, i) => `strict-${i}`)
    const acked = new Map<string, string[]>(bots.map((b) => [b, []]))
    let stop = false
    const writer = async (botId: string) => {
      const lease = (await run(log.acquireLease(botId, "node-s", 600_000)))!
      for (let version = 0; !stop; version++) {
        const eventId = randomUUID()
        const r = await run(Effect.either(log.append({
          botId, expectedVersion: version, fence: lease.fence,
          events: [{ eventId, data: received(1, 2, version + 1, `update ${version}`), occurredAt: new Date().toISOString(), correlationId: `c-${version}`, actor: "system" }]
        })))
        if (Either.isLeft(r)) return
        acked.get(botId)!.push(eventId)
      }
    }
    const writers = Promise.all(bots.map(writer))
    const total = () => [...acked.values()].reduce((n, ids) => n + ids.length, 0)
    for (let i = 0; i < 600 && total() < 400; i++) await new Promise((r) => setTimeout(r, 25))
    // killed while every writer has an append in flight
    await server.kill()
    stop = true
    await writers
    await run(log.close)
    const acknowledged = total()
    expect(acknowledged).toBeGreaterThanOrEqual(100)

    await server.restart()
    const after = await openLog(server.url, "strict")
    try {
      let lost = 0
      for (const botId of bots) {
        const kept = new Set((await run(after.readStream(botId))).map((e) => e.eventId))
        lost += acked.get(botId)!.filter((id) => !kept.has(id)).length
      }
      expect({ acknowledged, lost }).toEqual({ acknowledged, lost: 0 })
      console.log(`strict mode (appendfsync always): ${acknowledged} appends acknowledged before SIGKILL, ${lost} lost after the restart`)
    } finally {
      await run(after.close)
    }
  })

  it("everysec with the last second of the AOF lost: the versions that come again are reported as a divergence, never dropped", async () => {
    const server = await startPrivateRedisServer("everysec")
    servers.push(server)
    const db = await createTestDatabase("divergence_redis")
    const sql = makePgSql(db.url, { max: 3 })
    const dataDir = await mkdtemp(join(tmpdir(), "bf-divergence-"))
    const errors: string[] = []
    const collect = Logger.replace(Logger.defaultLogger, Logger.make(({ logLevel, message }) => {
      if (logLevel._tag === "Error") errors.push(String(Array.isArray(message) ? message.join(" ") : message))
    }))
    const projectAll = async (log: EventLogService) => {
      let deadLettered = 0
      for (const partition of [0, 1]) {
        const p = makeProjector({ log, sql, partition, blockMs: 0 })
        for (let i = 0; i < 50; i++) {
          const r = await run(p.step.pipe(Effect.provide(collect)))
          deadLettered += r.deadLettered
          if (r.caughtUp && r.projected === 0 && r.deadLettered === 0) break
        }
      }
      return deadLettered
    }
    try {
      await migrate(sql)
      let log = await openLog(server.url, "div")
      await appendFacts(log, "div-bot", [registered("owner-d", "div-bot"), ...Array.from({ length: 9 }, (_, i) => received(5, 6, i + 1, `kept ${i}`))])
      await appendFacts(log, "calm-bot", [registered("owner-c", "calm-bot"), received(1, 1, 1)])
      await projectAll(log)
      // everysec: what is older than a second is on disk
      await new Promise((r) => setTimeout(r, 1500))
      const synced = await server.aofSize()
      // the last second: acknowledged, and archived by the projector, before the host crashes
      await appendFacts(log, "div-bot", Array.from({ length: 10 }, (_, i) => received(5, 6, 100 + i, `lost ${i}`)))
      expect(await projectAll(log)).toBe(0)
      const archived = await sql.query<{ version: number; event_id: string }>("SELECT version, event_id FROM events_archive WHERE bot_id = 'div-bot' ORDER BY version")
      expect(archived.rows.map((r) => r.version)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
      await run(log.close)

      // the host crash: the server dies and its unsynced AOF tail with it
      await server.kill()
      await server.truncateAof(synced)
      await server.restart()
      log = await openLog(server.url, "div")
      expect(await run(log.streamVersion("div-bot"))).toBe(10)
      // the bot goes on from what Redis kept: versions 11..15 again, other events
      await appendFacts(log, "div-bot", Array.from({ length: 5 }, (_, i) => received(5, 6, 200 + i, `after the crash ${i}`)))
      await appendFacts(log, "calm-bot", [received(1, 1, 2)])
      expect(await projectAll(log)).toBe(5)

      // the archive keeps its copy; nothing of the hot log's was archived on top of it
      const now = await sql.query<{ version: number; event_id: string }>("SELECT version, event_id FROM events_archive WHERE bot_id = 'div-bot' ORDER BY version")
      expect(now.rows).toEqual(archived.rows)
      // the other bot of the fleet goes on
      expect((await sql.query("SELECT 1 FROM events_archive WHERE bot_id = 'calm-bot'")).rowCount).toBe(3)
      // reported: dead letters with the reason, the divergence recorded, an error logged
      const dead = [...(await run(log.readDeadLetters(0))), ...(await run(log.readDeadLetters(1)))]
      expect(dead.map((d) => d.reason.startsWith(DIVERGED_REASON) ? "diverged" : d.reason.startsWith(HELD_REASON) ? "held" : d.reason)).toEqual(["diverged", "held", "held", "held", "held"])
      expect(dead[0]!.reason).toContain(`bot div-bot version 11: the archive holds event ${archived.rows[10]!.event_id}`)
      expect(await readDivergences(sql)).toEqual([expect.objectContaining({ botId: "div-bot", version: 11, ownerId: "owner-d", archivedEventId: archived.rows[10]!.event_id })])
      expect(errors).toEqual([expect.stringContaining("the hot log diverges from the archive: bot div-bot version 11")])
      // and botfleet status counts it
      const env = {
        DATABASE_URL: db.url, REDIS_URL: server.url, REDIS_PREFIX: "div", PARTITIONS: "2", DATA_DIR: dataDir,
        BOTFLEET_SECRET_KEY: randomBytes(32).toString("base64"), LOG_LEVEL: "error"
      }
      const status = await captureCli(env, ["status", "--json"])
      expect(status.code).toBe(0)
      const shown = JSON.parse(status.out) as { partitions: Array<{ diverged: number }>; divergences: Array<{ botId: string; version: number }> }
      expect(shown.partitions.reduce((n, p) => n + p.diverged, 0)).toBe(5)
      expect(shown.divergences.map((d) => [d.botId, d.version])).toEqual([["div-bot", 11]])
      const text = await captureCli(env, ["status"])
      expect(text.out).toContain("hot log vs archive: 1 diverged version of 1 bot(s)")
      expect(JSON.parse((await captureCli(env, ["divergence", "list", "--json"])).out)).toEqual([expect.objectContaining({ botId: "div-bot", version: 11, logType: "MessageReceived" })])

      // the repair: the archive's history wins; refused while the bot's lease is held
      const busy = await captureCli(env, ["divergence", "resolve", "div-bot"])
      expect({ code: busy.code, err: busy.err }).toEqual({ code: 1, err: expect.stringContaining("bot div-bot is running on node test-node") })
      await run(log.releaseLease((await run(log.readLease("div-bot")))!))
      const resolved = await captureCli(env, ["divergence", "resolve", "div-bot", "--json"])
      expect(resolved.code).toBe(0)
      expect(JSON.parse(resolved.out)).toEqual({ botId: "div-bot", fromVersion: 11, toVersion: 20, hotLogEntriesRemoved: 5, reappended: 10, discardedDeadLetters: 5 })
      expect((await run(log.readStream("div-bot"))).map((e) => e.eventId)).toEqual(archived.rows.map((r) => r.event_id))
      expect(await readDivergences(sql)).toEqual([])
      // the projector recognises the copies appended back, and the bot goes on from the archive's history
      expect(await projectAll(log)).toBe(0)
      await appendFacts(log, "div-bot", [received(5, 6, 300, "after the repair")])
      expect(await projectAll(log)).toBe(0)
      const end = await sql.query<{ version: number; event_id: string }>("SELECT version, event_id FROM events_archive WHERE bot_id = 'div-bot' ORDER BY version")
      expect(end.rows.slice(0, 20)).toEqual(archived.rows)
      expect(end.rows.map((r) => r.version).at(-1)).toBe(21)
      expect((await captureCli(env, ["divergence", "resolve", "div-bot"])).err).toContain("has no recorded divergence")
      await run(log.close)
    } finally {
      await sql.close()
      await db.drop()
      await rm(dataDir, { recursive: true, force: true })
    }
  })
})
