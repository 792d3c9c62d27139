import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { BotActor } from "../../src/actors/actor.js"
import type { ActorDeps } from "../../src/actors/actor.js"
import { SNAPSHOT_SCHEMA_VERSION, encodeState } from "../../src/actors/decider/snapshot.js"
import { makePostgresSnapshotStore } from "../../src/actors/postgresSnapshotStore.js"
import { fold } from "../../src/actors/decider/state.js"
import { echoHandler } from "../../src/actors/decider/updateHandler.js"
import { makePostgresEventArchive } from "../../src/actors/postgresEventArchive.js"
import { makeRedisInbox } from "../../src/actors/redisInbox.js"
import type { SnapshotStoreService } from "../../src/actors/snapshotStore.js"
import type { InboxService } from "../../src/actors/inbox.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import { makeProjector } from "../../src/projections/projector.js"
import { useMigratedDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"
import { appendFacts, registered } from "../projections/fixtures.js"
import { run, storedState, text, until } from "./support.js"

const PARTITIONS = 4
const database = useMigratedDatabase("archive_hydration")

describe("actor hydration from the events archive (real Redis, real Postgres)", () => {
  const { prefix, url, cleanup } = createTestPrefix("archive-hydration")
  let redis: Redis
  let log: EventLogService
  let inbox: InboxService
  let snapshots: SnapshotStoreService
  beforeAll(async () => {
    redis = new Redis(url)
    log = await run(makeRedisEventLog({ url, prefix, partitions: PARTITIONS }))
    inbox = makeRedisInbox({ url, prefix, partitions: PARTITIONS })
    snapshots = makePostgresSnapshotStore(database())
  })
  afterAll(async () => {
    await run(inbox.close)
    await run(log.close)
    redis.disconnect()
    await cleanup()
  })

  const deps = (withArchive: boolean): ActorDeps => ({
    log,
    inbox,
    snapshots,
    handlerFor: () => echoHandler,
    ...(withArchive ? { archive: makePostgresEventArchive(database()) } : {})
  })
  /** The stored state, with every entry stored for the bot (an extra one would show as a difference). */
  const stored = async (botId: string) => {
    const { rows } = await database().query<{ key: string }>("SELECT key FROM actor_entries WHERE bot_id = $1", [botId])
    return storedState(snapshots, botId, rows.map((r) => r.key))
  }
  const dropSnapshot = (botId: string) => database().query("DELETE FROM actor_snapshots WHERE bot_id = $1", [botId])
  const updateIds = new Map<string, number>()

  /** Runs the bot's actor until it handled `count` more updates (and a config change), then stops it. */
  const session = async (d: ActorDeps, botId: string, count: number) => {
    const lease = (await run(log.readLease(botId)))!
    const actor = new BotActor(d, { botId, nodeId: lease.nodeId, fence: lease.fence, snapshotEvery: 10, idleWaitMs: 50 })
    let started: { version: number; updatesHandled: number } | undefined
    const done = actor.run((s) => (started = s))
    await until(() => started !== undefined, 10_000)
    const first = updateIds.get(botId) ?? 0
    for (let i = 1; i <= count; i++) await run(inbox.enqueue(botId, text(first + i, `m${first + i}`, 1 + (i % 3))))
    updateIds.set(botId, first + count)
    await until(() => actor.status().updatesHandled === started!.updatesHandled + count, 10_000)
    await actor.send({ _tag: "ChangeConfig", patch: { round: first + count } })
    await actor.send({ _tag: "Stop", reason: "test" })
    return { started: started!, final: await done }
  }

  const archiveAll = async () => {
    for (let p = 0; p < PARTITIONS; p++) {
      const projector = makeProjector({ log, sql: database(), partition: p, blockMs: 0 })
      for (;;) {
        const r = await run(projector.step)
        if (r.caughtUp && r.projected === 0) break
      }
    }
  }

  /** A bot with a history longer than its snapshots' interval, as a real node would leave it. */
  const botWithHistory = async (botId: string) => {
    await appendFacts(log, botId, [registered("owner-1", botId)])
    await session(deps(false), botId, 30)
    return run(log.readStream(botId))
  }

  it("rebuilds a bot whose snapshot is of another schema version and whose stream was trimmed, from the archive, and the bot goes on", async () => {
    const before = await botWithHistory("hist")
    const head = before.at(-1)!.version
    await archiveAll()
    await run(log.trimStream("hist", head - 5))
    expect((await run(log.readStream("hist")))[0]?.version).toBe(head - 5)
    // the snapshot as an older release wrote it: ignored by this one
    await database().query("UPDATE actor_snapshots SET schema_version = $2 WHERE bot_id = $1", ["hist", SNAPSHOT_SCHEMA_VERSION - 1])

    const { started, final } = await session(deps(true), "hist", 3)
    expect(started).toMatchObject({ version: head + 1, updatesHandled: 30 })
    expect(final.updatesHandled).toBe(33)
    const after = await run(log.readStream("hist", { from: head + 1 }))
    const snap = (await run(snapshots.load("hist")))!
    expect(snap).toMatchObject({ version: after.at(-1)!.version, schemaVersion: SNAPSHOT_SCHEMA_VERSION })
    expect(await stored("hist")).toEqual(encodeState(fold([...before, ...after].map((e) => e.data))))

    // and again with no snapshot at all and the whole stream trimmed
    await archiveAll()
    const all = [...before, ...after]
    await run(log.trimStream("hist", all.at(-1)!.version + 1))
    expect(await run(log.readStream("hist"))).toEqual([])
    await dropSnapshot("hist")
    const again = await session(deps(true), "hist", 2)
    expect(again.started).toMatchObject({ version: all.at(-1)!.version + 1, updatesHandled: 33 })
    const rest = await run(log.readStream("hist", { from: all.at(-1)!.version + 1 }))
    expect(await stored("hist")).toEqual(encodeState(fold([...all, ...rest].map((e) => e.data))))
  }, 60_000)

  it("refuses to run on a partial history: HistoryMissing, and nothing appended, without an archive or when it lacks the versions", async () => {
    const before = await botWithHistory("gap")
    const head = before.at(-1)!.version
    // trimmed before the projector archived it (an operator mistake): the archive lacks 1..head-5
    await run(log.trimStream("gap", head - 5))
    await dropSnapshot("gap")
    const lease = (await run(log.readLease("gap")))!
    for (const [withArchive, reason] of [[false, "NoArchive"], [true, "NotArchived"]] as const) {
      const actor = new BotActor(deps(withArchive), { botId: "gap", nodeId: lease.nodeId, fence: lease.fence, idleWaitMs: 50 })
      await expect(actor.run()).rejects.toMatchObject({ _tag: "HistoryMissing", botId: "gap", missingFrom: 1, missingTo: head - 6, reason })
      expect(await run(log.streamVersion("gap"))).toBe(head)
      expect(await run(snapshots.load("gap"))).toBeNull()
    }
  }, 60_000)
})

