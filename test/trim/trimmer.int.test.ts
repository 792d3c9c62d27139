import { Cause, Deferred, Effect, Exit, Fiber, Logger } from "effect"
import fc from "fast-check"
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makePostgresEventArchive } from "../../src/actors/postgresEventArchive.js"
import { makePostgresSnapshotStore } from "../../src/actors/postgresSnapshotStore.js"
import { makeMemorySnapshotStore } from "../../src/actors/snapshotStore.js"
import type { SnapshotStoreService } from "../../src/actors/snapshotStore.js"
import type { SqlClient } from "../../src/db/sql.js"
import { withArchiveReadThrough } from "../../src/events/archiveReadThrough.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makePostgresEventLog } from "../../src/events/postgresEventLog.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import type { RecordedEvent } from "../../src/events/schema/envelope.js"
import { makeProjector } from "../../src/projections/projector.js"
import { makePostgresTrimLedger } from "../../src/trim/trimLedger.js"
import { makeTrimmer, runTrimmer, trimmerLeaseName } from "../../src/trim/trimmer.js"
import type { TrimmerOptions } from "../../src/trim/trimmer.js"
import { useMigratedDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"
import { appendFacts, received, registered } from "../projections/fixtures.js"

/*
 * The hot-log trimmer against the real stores: the Redis log (production) and the Postgres log
 * (embedded mode's, where a bot's event is one row of its stream and its partition log), each
 * with the events archive in Postgres. What must hold: nothing leaves the hot log before the
 * archive holds it; a stream keeps everything above its snapshot and its newest HOT_LOG_EVENTS;
 * a partition log keeps what any consumer group still needs; a trimmer killed mid-run leaves
 * nothing half done; and a trimmed stream reads whole through the archive.
 */

const PARTITIONS = 8
const run = Effect.runPromise

interface Subject {
  readonly log: EventLogService
  readonly snapshots: SnapshotStoreService
  readonly close: () => Promise<void>
}

const adapters: ReadonlyArray<[string, string, (sql: SqlClient) => Promise<Subject>]> = [
  [
    "Redis log",
    "redis",
    async () => {
      const t = createTestPrefix("trim")
      const redis = new Redis(t.url)
      const log = await run(makeRedisEventLog({ redis, prefix: t.prefix, partitions: PARTITIONS }))
      return {
        log,
        snapshots: makeMemorySnapshotStore(),
        close: async () => {
          await run(log.close)
          redis.disconnect()
          await t.cleanup()
        }
      }
    }
  ],
  [
    "Postgres log (embedded mode's layout)",
    "pg",
    async (sql) => ({ log: makePostgresEventLog({ sql, partitions: PARTITIONS }), snapshots: makePostgresSnapshotStore(sql), close: async () => {} })
  ]
]

for (const [name, label, make] of adapters) {
  describe(`hot-log trimmer: ${name} + events archive in Postgres`, () => {
    const database = useMigratedDatabase(`trim_${label}`)
    let subject: Subject
    let log: EventLogService
    let whole: EventLogService
    beforeAll(async () => {
      subject = await make(database())
      log = subject.log
      whole = withArchiveReadThrough(log, makePostgresEventArchive(database()))
    })
    afterAll(async () => {
      await subject?.close()
    })

    let seq = 0
    /** `n` fresh bot ids that land in `partition`. */
    const botsIn = (partition: number, n: number): string[] => {
      const out: string[] = []
      for (let i = 0; out.length < n; i++) {
        const id = `${label}-${++seq}-${i}`
        if (log.partitionOf(id) === partition) out.push(id)
      }
      return out
    }
    const chat = (botId: string, n: number, from = 1) => Array.from({ length: n }, (_, i) => received(7, 7, from + i, `${botId} says ${from + i}`))
    const project = async (...partitions: number[]) => {
      for (const p of partitions) {
        const projector = makeProjector({ log, sql: database(), partition: p, blockMs: 0 })
        for (;;) if ((await run(projector.step)).caughtUp) break
      }
    }
    const snapshot = (botId: string, version: number) => run(subject.snapshots.save(botId, { version, schemaVersion: 1, fence: 1, state: {} }, []))
    const hot = async (botId: string) => (await run(log.readStream(botId))).map((e) => e.version)
    const partitionLog = (p: number) => run(log.readPartition(p))
    const options = (o: Partial<TrimmerOptions> = {}): TrimmerOptions => ({
      log,
      ledger: makePostgresTrimLedger(database()),
      snapshotVersion: (botId) => subject.snapshots.version(botId),
      nodeId: "node-1",
      hotEvents: 3,
      maxAgeMs: 0,
      ...o
    })
    const versionsOf = (events: ReadonlyArray<RecordedEvent>) => events.map((e) => e.version)

    it("trims streams below their snapshot and partition logs below what is archived; read through the archive, every stream is whole", async () => {
      const [a, b] = botsIn(0, 2)
      const [c] = botsIn(1, 1)
      for (const bot of [a!, b!, c!]) await appendFacts(log, bot, [registered("owner-1", bot), ...chat(bot, 29)])
      await project(0, 1)
      await snapshot(a!, 20)
      await snapshot(c!, 25)
      await appendFacts(log, a!, chat(a!, 5, 30)) // 31..35: not archived yet
      const before = new Map<string, ReadonlyArray<RecordedEvent>>()
      for (const bot of [a!, b!, c!]) before.set(bot, await run(log.readStream(bot)))

      const trimmer = makeTrimmer(options())
      const [r0, r1] = [await run(trimmer.trimPartition(0)), await run(trimmer.trimPartition(1))]
      expect(r0).toMatchObject({ owned: true, streams: 1, held: { reason: "NotAcked", group: "projections" } })
      expect(r1).toMatchObject({ owned: true, streams: 1, held: null })

      // a: below its snapshot (20); b: no snapshot, untouched; c: its newest 3 events stay (25 < 28 < 31)
      expect(await hot(a!)).toEqual(Array.from({ length: 15 }, (_, i) => 21 + i))
      expect(await hot(b!)).toEqual(Array.from({ length: 30 }, (_, i) => 1 + i))
      expect(await hot(c!)).toEqual([26, 27, 28, 29, 30])
      expect(r0.removedFromStreams + r1.removedFromStreams).toBe(20 + 25)

      // the partition logs: what is not archived stays; what is archived is gone unless a stream keeps it
      const left0 = (await partitionLog(0)).map((d) => d.raw)
      const unarchived = left0.filter((f) => f["botId"] === a && Number(f["v"]) > 30).map((f) => Number(f["v"]))
      expect(unarchived).toEqual([31, 32, 33, 34, 35])
      const keptByStream = async (p: number) => {
        for (const f of (await partitionLog(p)).map((d) => d.raw)) {
          const v = Number(f["v"])
          if (f["botId"] === a && v > 30) continue
          expect((await hot(f["botId"]!)).includes(v)).toBe(true)
        }
      }
      await keptByStream(0)
      await keptByStream(1)
      if (label === "redis") expect((await partitionLog(1)).length).toBe(0)

      // through the archive each stream reads exactly as it did untrimmed, forward and backward
      for (const bot of [a!, b!, c!]) expect(await run(whole.readStream(bot))).toEqual(before.get(bot))
      expect(await run(whole.readStream(a!, { from: 18, limit: 6 }))).toEqual(before.get(a!)!.slice(17, 23))
      expect(await run(whole.readStream(a!, { direction: "backward", limit: 20 }))).toEqual([...before.get(a!)!].reverse().slice(0, 20))
      expect(await run(whole.readStream(c!, { direction: "backward", from: 10, limit: 4 }))).toEqual(before.get(c!)!.slice(6, 10).reverse())
      expect(await run(whole.readStream(c!, { from: 40 }))).toEqual([])

      // a second run finds nothing more to remove
      const again = [await run(trimmer.trimPartition(0)), await run(trimmer.trimPartition(1))]
      expect(again.map((r) => r.removedFromPartition + r.removedFromStreams)).toEqual([0, 0])

      // once archived and snapshotted, a's newer events go too, down to its newest 3
      await project(0)
      await snapshot(a!, 35)
      await run(trimmer.trimPartition(0))
      expect(await hot(a!)).toEqual([33, 34, 35])
      expect(await run(whole.readStream(a!))).toEqual(before.get(a!))
    })

    it("keeps what a lagging consumer group has not acknowledged, and what is younger than the age window", async () => {
      const p = 2
      await run(log.ensureGroup(p, "laggard", "start"))
      const [bot] = botsIn(p, 1)
      await appendFacts(log, bot!, [registered("owner-2", bot), ...chat(bot!, 19)])
      await project(p)
      await snapshot(bot!, 20)
      const trimmer = makeTrimmer(options())
      const nothing = await run(trimmer.trimPartition(p))
      expect(nothing).toMatchObject({ entries: 0, held: { reason: "NotAcked", group: "laggard" } })
      expect(await hot(bot!)).toHaveLength(20)

      const taken = await run(log.readGroup({ partition: p, group: "laggard", consumer: "slow", count: 8 }))
      await run(log.ack(p, "laggard", taken.slice(0, 4).map((d) => d.position)))
      const some = await run(trimmer.trimPartition(p))
      expect(some).toMatchObject({ entries: 4, held: { reason: "NotAcked", group: "laggard", position: taken[4]!.position } })
      expect((await hot(bot!))[0]).toBe(5)

      // the age window: entries recorded within HOT_LOG_MAX_AGE stay, whoever acked them
      await run(log.ack(p, "laggard", taken.slice(4).map((d) => d.position)))
      for (;;) {
        const more = await run(log.readGroup({ partition: p, group: "laggard", consumer: "slow", count: 100 }))
        if (more.length === 0) break
        await run(log.ack(p, "laggard", more.map((d) => d.position)))
      }
      const young = await run(makeTrimmer(options({ maxAgeMs: 3_600_000 })).trimPartition(p))
      expect(young).toMatchObject({ entries: 0, held: { reason: "TooYoung" } })
      const all = await run(trimmer.trimPartition(p))
      expect(all).toMatchObject({ entries: 16, held: null })
      expect(await hot(bot!)).toEqual([18, 19, 20])
    })

    it("a trimmer killed between its archive check and the trim removes nothing; killed between the streams and the partition log, the next run finishes the job", async () => {
      const p = 3
      const [x, y] = botsIn(p, 2)
      for (const bot of [x!, y!]) await appendFacts(log, bot, [registered("owner-3", bot), ...chat(bot, 11)])
      await project(p)
      await snapshot(x!, 12)
      await snapshot(y!, 12)
      const before = { x: await run(log.readStream(x!)), y: await run(log.readStream(y!)), partition: await partitionLog(p) }

      // killed (interrupted) once every check passed, before the first removal
      const reached = await run(Deferred.make<void>())
      const killed = makeTrimmer(options({ beforeTrim: () => Deferred.succeed(reached, undefined).pipe(Effect.zipRight(Effect.never)) }))
      const fiber = Effect.runFork(killed.trimPartition(p))
      await run(Deferred.await(reached))
      await run(Fiber.interrupt(fiber))
      expect(await run(log.readStream(x!))).toEqual(before.x)
      expect(await run(log.readStream(y!))).toEqual(before.y)
      expect((await partitionLog(p)).map((d) => d.position)).toEqual(before.partition.map((d) => d.position))

      // crashed after trimming the streams, before the partition log and the cursor
      const crashing: EventLogService = { ...log, trimPartition: () => Effect.die(new Error("node crashed")) }
      const exit = await Effect.runPromiseExit(makeTrimmer(options({ log: crashing })).trimPartition(p))
      expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
      expect(await hot(x!)).toEqual([10, 11, 12])
      expect(await run(makePostgresTrimLedger(database()).cursor(p))).toBeNull()

      // the next run (the same node restarted) picks up where the first stopped
      const done = await run(makeTrimmer(options()).trimPartition(p))
      // on the Postgres log the stream trims removed their rows from the partition log already
      expect(done).toMatchObject({ entries: label === "redis" ? 24 : 6, held: null })
      expect(await hot(x!)).toEqual([10, 11, 12])
      expect(await hot(y!)).toEqual([10, 11, 12])
      if (label === "redis") expect(await partitionLog(p)).toEqual([])
      expect(await run(whole.readStream(x!))).toEqual(before.x)
      expect(await run(whole.readStream(y!))).toEqual(before.y)
    })

    it("never trims what is not archived: an event the projectors dead-lettered holds its partition log and its bot's stream", async () => {
      const p = 4
      const [reg, orphan] = botsIn(p, 2)
      await appendFacts(log, reg!, [registered("owner-4", reg), ...chat(reg!, 4)])
      // no BotRegistered: the projectors cannot tell its owner and dead-letter its events
      await appendFacts(log, orphan!, chat(orphan!, 5))
      await appendFacts(log, reg!, chat(reg!, 5, 5))
      await project(p)
      const { rows } = await database().query<{ bot_id: string; version: number }>(
        "SELECT bot_id, version FROM archive_watermarks WHERE bot_id = ANY($1::text[])",
        [[reg, orphan]]
      )
      expect(rows).toEqual([{ bot_id: reg, version: 10 }])
      await snapshot(reg!, 10)
      await snapshot(orphan!, 5)
      const r = await run(makeTrimmer(options()).trimPartition(p))
      expect(r).toMatchObject({ entries: 5, held: { reason: "NotArchived", botId: orphan, version: 1 } })
      expect(await hot(orphan!)).toEqual([1, 2, 3, 4, 5])
      expect(await hot(reg!)).toEqual([6, 7, 8, 9, 10])
      const left = (await partitionLog(p)).map((d) => `${d.raw["botId"]}:${d.raw["v"]}`)
      for (let v = 1; v <= 5; v++) expect(left).toContain(`${orphan}:${v}`)
      for (let v = 6; v <= 10; v++) expect(left).toContain(`${reg}:${v}`)

      // the node's trimmer says so in its log, naming the bot and version, run after run
      const warnings: string[] = []
      const logger = Logger.make(({ logLevel, message }) => {
        if (logLevel._tag === "Warning") warnings.push(String(Array.isArray(message) ? message.join(" ") : message))
      })
      const fiber = Effect.runFork(
        runTrimmer({ ...options(), partitions: [p], interval: "20 millis" }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      )
      await expect.poll(() => warnings.filter((w) => w.includes(`held at`)).length, { timeout: 20_000 }).toBeGreaterThanOrEqual(2)
      await run(Fiber.interrupt(fiber))
      expect(warnings[0]).toContain(`bot ${orphan} version 1 is acked by every consumer group but not archived`)
    })

    it("verifies, does not assume: an archive missing events its watermark covers makes the run refuse, removing nothing", async () => {
      const p = 5
      const [bot] = botsIn(p, 1)
      await appendFacts(log, bot!, [registered("owner-5", bot), ...chat(bot!, 9)])
      await project(p)
      await snapshot(bot!, 10)
      await database().query("DELETE FROM events_archive WHERE bot_id = $1 AND version = 3", [bot])
      const before = await partitionLog(p)
      const exit = await Effect.runPromiseExit(makeTrimmer(options()).trimPartition(p))
      expect(exit).toMatchObject({ _tag: "Failure" })
      const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : undefined
      expect(error).toMatchObject({ value: { _tag: "TrimRefused", reason: "ArchiveMissingEvents", expected: 10, found: 9 } })
      expect(await hot(bot!)).toHaveLength(10)
      expect((await partitionLog(p)).map((d) => d.position)).toEqual(before.map((d) => d.position))
    })

    it("one trimmer per partition: another node's trimmer leaves a partition alone while the lease is held", async () => {
      const p = 6
      const first = makeTrimmer(options({ nodeId: "node-a" }))
      const second = makeTrimmer(options({ nodeId: "node-b" }))
      expect((await run(first.trimPartition(p))).owned).toBe(true)
      expect((await run(second.trimPartition(p))).owned).toBe(false)
      expect((await run(log.readLease(trimmerLeaseName(p))))?.nodeId).toBe("node-a")
      await run(first.release)
      expect((await run(second.trimPartition(p))).owned).toBe(true)
      await run(second.release)
    })

    it("whatever appends, projections, snapshots and trims interleave, nothing is lost and each stream keeps its window (property)", async () => {
      const p = 7
      let removed = 0
      const op = fc.oneof(
        fc.record({ op: fc.constant("append" as const), bot: fc.nat(2), n: fc.integer({ min: 1, max: 6 }) }),
        fc.record({ op: fc.constant("project" as const) }),
        fc.record({ op: fc.constant("snapshot" as const), bot: fc.nat(2) }),
        fc.record({ op: fc.constant("trim" as const), batchSize: fc.integer({ min: 1, max: 8 }) })
      )
      await fc.assert(
        fc.asyncProperty(fc.array(op, { minLength: 4, maxLength: 16 }), fc.integer({ min: 1, max: 4 }), async (ops, hotEvents) => {
          const bots = botsIn(p, 3)
          const appended = new Map<string, string[]>()
          const snapshots = new Map<string, number>()
          for (const bot of bots) {
            await appendFacts(log, bot, [registered("owner-p", bot)])
            appended.set(bot, [])
          }
          for (const o of ops) {
            if (o.op === "append") await appendFacts(log, bots[o.bot]!, chat(bots[o.bot]!, o.n))
            else if (o.op === "project") await project(p)
            else if (o.op === "snapshot") {
              const v = await run(log.streamVersion(bots[o.bot]!))
              snapshots.set(bots[o.bot]!, v)
              await snapshot(bots[o.bot]!, v)
            } else {
              const r = await run(makeTrimmer(options({ hotEvents, batchSize: o.batchSize, maxBatches: 3 })).trimPartition(p))
              removed += r.removedFromStreams
            }
          }
          const { rows } = await database().query<{ bot_id: string; version: number }>(
            "SELECT bot_id, version FROM archive_watermarks WHERE bot_id = ANY($1::text[])",
            [bots]
          )
          const watermark = new Map(rows.map((r) => [r.bot_id, Number(r.version)]))
          for (const bot of bots) {
            const version = await run(log.streamVersion(bot))
            const read = await run(whole.readStream(bot))
            expect(versionsOf(read)).toEqual(Array.from({ length: version }, (_, i) => i + 1))
            const kept = await hot(bot)
            const first = kept[0] ?? version + 1
            // everything above the snapshot, everything not archived, and the newest hotEvents stay
            expect(first).toBeLessThanOrEqual((snapshots.get(bot) ?? 0) + 1)
            expect(first).toBeLessThanOrEqual((watermark.get(bot) ?? 0) + 1)
            expect(first).toBeLessThanOrEqual(Math.max(1, version - hotEvents + 1))
          }
          // archived, so the next round's trims are not held behind this round's bots
          await project(p)
        }),
        { numRuns: 6 }
      )
      // the rounds did trim (the property is not about a trimmer that never removes anything)
      expect(removed).toBeGreaterThan(0)
    })
  })
}
