import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { afterAll, describe, expect, it } from "vitest"
import { makeBotDecider } from "../../src/actors/decider/decide.js"
import type { BotState } from "../../src/actors/decider/state.js"
import { echoHandler } from "../../src/actors/decider/updateHandler.js"
import { makePostgresSnapshotStore } from "../../src/actors/postgresSnapshotStore.js"
import { makeMemorySnapshotStore } from "../../src/actors/snapshotStore.js"
import type { SnapshotStoreService } from "../../src/actors/snapshotStore.js"
import { migrate } from "../../src/db/migrator.js"
import { makePgliteSql } from "../../src/db/pgliteSql.js"
import { makePgSql } from "../../src/db/pgSql.js"
import type { SqlClient } from "../../src/db/sql.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makePostgresEventLog } from "../../src/events/postgresEventLog.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import type { DomainEvent } from "../../src/events/schema/catalogue.js"
import { makeProjector } from "../../src/projections/projector.js"
import { makeFleetDirectory } from "../../src/runtime/fleetDirectory.js"
import { makePostgresTrimLedger } from "../../src/trim/trimLedger.js"
import { makeTrimmer } from "../../src/trim/trimmer.js"
import { createTestDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"
import { captureCli } from "./support.js"

/*
 * A trimmed stream looks whole to a developer: inspect, tail, replay, events --export and bots
 * list print exactly what they printed before the hot log was trimmed, reading the trimmed
 * versions from the events archive. In production mode (Redis + Postgres) and in embedded mode
 * (the Postgres log on PGlite, where the trim deletes the log's own rows).
 */

const run = Effect.runPromise
const kinds = fileURLToPath(new URL("./replay/echoKinds.ts", import.meta.url))
const cleanups: Array<() => Promise<void>> = []
afterAll(async () => {
  for (const c of cleanups.reverse()) await c()
})

/** A bot's recorded conversation, decided by the echo bot as its actor would have: 1 + 3 × 12 events. */
const record = async (log: EventLogService, botId: string) => {
  const decider = makeBotDecider(() => echoHandler)
  let state: BotState = decider.initialState
  let version = 0
  const lease = (await run(log.acquireLease(botId, "test", 60_000)))!
  const append = async (events: ReadonlyArray<DomainEvent>, at: string, correlationId: string, actor: string) => {
    const r = await run(log.append({ botId, expectedVersion: version, fence: lease.fence, events: events.map((data) => ({ data, occurredAt: at, correlationId, actor })) }))
    version = r.version
    state = events.reduce(decider.evolve, state)
  }
  const reg = await decider.decide({ _tag: "Register", ownerId: "o", name: botId, kind: "echo", mode: "sandbox", at: "2025-01-01T00:00:00.000Z" }, state)
  await append(reg, "2025-01-01T00:00:00.000Z", "reg", "owner:o")
  for (let n = 1; n <= 12; n++) {
    const at = new Date(Date.parse("2025-01-01T00:00:00.000Z") + n * 60_000).toISOString()
    const update = { update_id: 100 + n, message: { message_id: n, text: `message ${n}`, chat: { id: 5 + (n % 2), type: "private" }, from: { id: 5, first_name: "A" } } }
    await append(await decider.decide({ _tag: "HandleUpdate", inboxId: `${n}-0`, update, at }, state), at, `inbox:${n}-0`, "user:5")
  }
  await run(log.releaseLease(lease))
  return version
}

const projectAll = async (log: EventLogService, sql: SqlClient) => {
  for (let p = 0; p < log.partitions; p++) {
    const projector = makeProjector({ log, sql, partition: p, blockMs: 0 })
    for (;;) if ((await run(projector.step)).caughtUp) break
  }
}

const trimAll = async (log: EventLogService, sql: SqlClient, snapshots: SnapshotStoreService) => {
  const trimmer = makeTrimmer({ log, ledger: makePostgresTrimLedger(sql), snapshotVersion: (b) => snapshots.version(b), nodeId: "t", hotEvents: 3, maxAgeMs: 0 })
  for (let p = 0; p < log.partitions; p++) await run(trimmer.trimPartition(p))
  await run(trimmer.release)
}

/** Everything a developer reads of the bot, as the CLI prints it. */
const views = async (env: Record<string, string>, dir: string, botId: string, round: string) => {
  const cli = (...argv: Array<string>) => captureCli(env, argv)
  const ok = async (...argv: Array<string>) => {
    const r = await cli(...argv)
    expect(r.err).toBe("")
    expect(r.code).toBe(0)
    return r.out
  }
  // JSON is compared parsed: the archive keeps payloads as jsonb, which does not keep the key order
  // inside an object (an update's fields), only what they say
  const lines = (text: string) => text.trim().split("\n").map((l) => JSON.parse(l) as unknown)
  const file = join(dir, `${botId}-${round}.ndjson`)
  await ok("events", botId, "--export", file)
  return {
    inspect: JSON.parse(await ok("inspect", botId)) as unknown,
    inspectAt: JSON.parse(await ok("inspect", botId, "--at", "5")) as unknown,
    inspectAtTime: JSON.parse(await ok("inspect", botId, "--at", "2025-01-01T00:04:30Z")) as unknown,
    replay: JSON.parse(await ok("replay", botId, "--kinds", kinds, "--json")) as unknown,
    replayFrom: await ok("replay", botId, "--kinds", kinds, "--from", "5", "--to", "19"),
    tail: lines(await ok("tail", botId, "--from", "1", "--no-follow", "--json")),
    tailChat: await ok("tail", botId, "--no-follow", "--chat", "6"),
    tailLast: await ok("tail", botId, "--no-follow"),
    exported: lines(await readFile(file, "utf8")),
    bots: JSON.parse(await ok("bots", "list", "--json")) as unknown
  }
}

describe("a trimmed stream reads whole through the archive", () => {
  it("in production mode (Redis + Postgres): every developer command prints what it printed untrimmed", async () => {
    const db = await createTestDatabase("read_through")
    const redis = createTestPrefix("read-through")
    const dir = await mkdtemp(join(tmpdir(), "bf-read-through-"))
    const sql = makePgSql(db.url, { max: 2 })
    const client = new Redis(redis.url)
    const log = await run(makeRedisEventLog({ redis: client, prefix: redis.prefix }))
    cleanups.push(async () => {
      await run(log.close)
      client.disconnect()
      await sql.close()
      await redis.cleanup()
      await db.drop()
      await rm(dir, { recursive: true, force: true })
    })
    await migrate(sql)
    const env = { DATABASE_URL: db.url, REDIS_URL: redis.url, REDIS_PREFIX: redis.prefix, BOTFLEET_SECRET_KEY: Buffer.alloc(32, 3).toString("base64"), DATA_DIR: dir, LOG_LEVEL: "warning" }
    const last = await record(log, "talker")
    await run(makeFleetDirectory(sql).add("talker"))
    await projectAll(log, sql)
    const snapshots = makeMemorySnapshotStore()
    await run(snapshots.save("talker", { version: last - 2, schemaVersion: 1, fence: 1, state: {} }, []))

    const before = await views(env, dir, "talker", "before")
    await trimAll(log, sql, snapshots)
    expect((await run(log.readStream("talker"))).map((e) => e.version)).toEqual([last - 2, last - 1, last])
    const after = await views(env, dir, "talker", "after")
    expect(after).toEqual(before)
    expect(before.tailChat.split("\n")).toHaveLength(10)
    expect(before.replay).toMatchObject({ identical: true, eventsRead: last })
    expect(before.exported).toHaveLength(last)

    // versions in neither the hot log nor the archive: the command fails naming them, never shows a hole
    await sql.query("DELETE FROM events_archive WHERE bot_id = 'talker' AND version = 7")
    const holed = await captureCli(env, ["inspect", "talker"])
    expect(holed.code).toBe(1)
    expect(holed.err).toContain("bot talker: events 7..")
    expect(holed.err).toContain("the archive does not have them")
    expect(holed.err).not.toContain("Is Redis")
  }, 120_000)

  it("in embedded mode (the Postgres log on PGlite, trimmed in place)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "bf-read-through-embedded-"))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    const env = { DATA_DIR: dir, LOG_LEVEL: "warning" }
    /** PGlite is one process per folder: the test opens it only while the CLI does not. */
    const withDb = async <A>(f: (sql: SqlClient, log: EventLogService, snapshots: SnapshotStoreService) => Promise<A>): Promise<A> => {
      const sql = await makePgliteSql({ dataDir: join(dir, "pglite") })
      try {
        await migrate(sql)
        return await f(sql, makePostgresEventLog({ sql }), makePostgresSnapshotStore(sql))
      } finally {
        await sql.close()
      }
    }
    const last = await withDb(async (sql, log, snapshots) => {
      const v = await record(log, "local")
      await run(makeFleetDirectory(sql).add("local"))
      await projectAll(log, sql)
      await run(snapshots.save("local", { version: v - 2, schemaVersion: 1, fence: 1, state: {} }, []))
      return v
    })
    const before = await views(env, dir, "local", "before")
    await withDb(async (sql, log, snapshots) => {
      await trimAll(log, sql, snapshots)
      expect((await run(log.readStream("local"))).map((e) => e.version)).toEqual([last - 2, last - 1, last])
      const { rows } = await sql.query<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE bot_id = 'local'")
      expect(rows[0]!.n).toBe(3)
    })
    const after = await views(env, dir, "local", "after")
    expect(after).toEqual(before)
  }, 180_000)
})
