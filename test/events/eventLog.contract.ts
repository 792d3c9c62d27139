import { Effect, Either } from "effect"
import fc from "fast-check"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { pollOnce } from "../../src/events/consumer.js"
import type { AppendError } from "../../src/events/errors.js"
import type { EventLogService, Lease, RawFields } from "../../src/events/eventLog.js"
import type { DomainEvent } from "../../src/events/schema/envelope.js"
import { newEvent, updateReceived, userSeen } from "../support/events.js"

/**
 * What every event log adapter must do. An adapter's test file calls this with a factory giving a
 * fresh, empty log (own key prefix / database) and a way to write raw entries as a foreign or older
 * writer could (for poison and upcasting cases).
 */
export interface ContractSubject {
  readonly log: EventLogService
  /** Writes raw fields into a partition log, bypassing validation. */
  readonly injectRaw: (partition: number, fields: RawFields) => Promise<unknown>
  readonly cleanup: () => Promise<void>
}

const run = <A, E>(eff: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(eff)
const attempt = <A, E>(eff: Effect.Effect<A, E>): Promise<Either.Either<A, E>> => Effect.runPromise(Effect.either(eff))
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

let botSeq = 0
const freshBot = (label: string) => `${label}-${process.pid}-${++botSeq}-${Math.random().toString(36).slice(2, 8)}`

/** Bots that hash to a given partition, for ordering tests. */
const botsInPartition = (log: EventLogService, partition: number, n: number, label: string): string[] => {
  const out: string[] = []
  for (let i = 0; out.length < n; i++) {
    const id = `${label}-${i}-${botSeq}`
    if (log.partitionOf(id) === partition) out.push(id)
  }
  botSeq++
  return out
}

export const eventLogContract = (name: string, make: () => Promise<ContractSubject>) =>
  describe(`event log contract: ${name}`, () => {
    let subject: ContractSubject
    let log: EventLogService
    beforeAll(async () => {
      subject = await make()
      log = subject.log
    })
    afterAll(async () => {
      await subject?.cleanup()
    })

    const lease = async (botId: string, node = "node-a", ttl = 30_000): Promise<Lease> => {
      const l = await run(log.acquireLease(botId, node, ttl))
      expect(l).not.toBeNull()
      return l!
    }

    describe("append and read", () => {
      it("appends events in order and reads them back as written", async () => {
        const bot = freshBot("rw")
        const l = await lease(bot)
        const events = [newEvent(updateReceived(1)), newEvent(userSeen(7, "Grace")), newEvent(updateReceived(2))]
        const r = await run(log.append({ botId: bot, expectedVersion: 0, fence: l.fence, events }))
        expect(r.version).toBe(3)
        expect(r.positions).toHaveLength(3)
        const read = await run(log.readStream(bot))
        expect(read.map((e) => e.version)).toEqual([1, 2, 3])
        expect(read.map((e) => e.data)).toEqual(events.map((e) => e.data))
        expect(read.map((e) => e.correlationId)).toEqual(events.map((e) => e.correlationId))
        expect(read.every((e) => e.botId === bot && e.partition === log.partitionOf(bot))).toBe(true)
        expect(read.map((e) => e.position)).toEqual(r.positions)
        expect(await run(log.streamVersion(bot))).toBe(3)
      })

      it("reads forward from a version and backward with a limit", async () => {
        const bot = freshBot("dir")
        const l = await lease(bot)
        const events = Array.from({ length: 6 }, (_, i) => newEvent(updateReceived(i + 1)))
        await run(log.append({ botId: bot, expectedVersion: 0, fence: l.fence, events }))
        const fwd = await run(log.readStream(bot, { from: 3, limit: 2 }))
        expect(fwd.map((e) => e.version)).toEqual([3, 4])
        const back = await run(log.readStream(bot, { direction: "backward", limit: 3 }))
        expect(back.map((e) => e.version)).toEqual([6, 5, 4])
        const backFrom = await run(log.readStream(bot, { direction: "backward", from: 2 }))
        expect(backFrom.map((e) => e.version)).toEqual([2, 1])
        expect(await run(log.readStream(freshBot("none")))).toEqual([])
        expect(await run(log.streamVersion(freshBot("none")))).toBe(0)
      })

      it("refuses a stale expected version with the actual version, writing nothing", async () => {
        const bot = freshBot("occ")
        const l = await lease(bot)
        await run(log.append({ botId: bot, expectedVersion: 0, fence: l.fence, events: [newEvent(updateReceived(1))] }))
        const r = await attempt(log.append({ botId: bot, expectedVersion: 0, fence: l.fence, events: [newEvent(updateReceived(2))] }))
        expect(Either.isLeft(r) && r.left).toMatchObject({ _tag: "WrongExpectedVersion", expected: 0, actual: 1 })
        const ahead = await attempt(log.append({ botId: bot, expectedVersion: 5, fence: l.fence, events: [newEvent(updateReceived(2))] }))
        expect(Either.isLeft(ahead) && ahead.left).toMatchObject({ _tag: "WrongExpectedVersion", expected: 5, actual: 1 })
        expect(await run(log.streamVersion(bot))).toBe(1)
      })

      it("appendMany reports each append on its own", async () => {
        const a = freshBot("many-a")
        const b = freshBot("many-b")
        const la = await lease(a)
        const lb = await lease(b)
        const results = await run(
          log.appendMany([
            { botId: a, expectedVersion: 0, fence: la.fence, events: [newEvent(updateReceived(1))] },
            { botId: b, expectedVersion: 3, fence: lb.fence, events: [newEvent(updateReceived(1))] },
            { botId: b, expectedVersion: 0, fence: lb.fence, events: [newEvent(updateReceived(1)), newEvent(updateReceived(2))] }
          ])
        )
        expect(results.map((r) => (Either.isRight(r) ? r.right.version : r.left._tag))).toEqual([1, "WrongExpectedVersion", 2])
        expect(await run(log.streamVersion(b))).toBe(2)
      })

      it("keeps append order within a partition log and within each bot", async () => {
        const partition = 3
        const bots = botsInPartition(log, partition, 3, "order")
        const leases = await Promise.all(bots.map((b) => lease(b)))
        const before = await run(log.readPartition(partition))
        const after = before.at(-1)?.position
        const written: Array<[string, number]> = []
        for (let round = 1; round <= 4; round++) {
          for (const [i, bot] of bots.entries()) {
            await run(log.append({ botId: bot, expectedVersion: round - 1, fence: leases[i]!.fence, events: [newEvent(updateReceived(round))] }))
            written.push([bot, round])
          }
        }
        const read = await run(log.readPartition(partition, after === undefined ? {} : { after }))
        const decoded = read.map((d) => Either.getOrThrow(d.event))
        expect(decoded.map((e) => [e.botId, e.version])).toEqual(written)
        const positions = read.map((d) => d.position)
        const page = await run(log.readPartition(partition, { after: positions[4]!, limit: 3 }))
        expect(page.map((d) => d.position)).toEqual(positions.slice(5, 8))
      })
    })

    describe("bad input gets a typed error and writes nothing", () => {
      const cases: Array<[string, (fence: number) => unknown, string]> = [
        ["an unknown event type", () => ({ data: { _tag: "BotExploded", how: "loudly" } }), "UnknownType"],
        ["a payload that fails its schema", () => ({ data: { _tag: "UserSeen", userId: "seven", firstName: "A", at: "x" } }), "SchemaMismatch"],
        ["a missing occurredAt", () => ({ data: userSeen(1), occurredAt: "yesterday-ish" }), "MissingField"],
        ["a missing actor", () => ({ data: userSeen(1), actor: "" }), "MissingField"]
      ]
      for (const [label, build, reason] of cases) {
        it(`refuses ${label}`, async () => {
          const bot = freshBot("bad")
          const l = await lease(bot)
          const good = newEvent(updateReceived(1))
          const bad = { ...newEvent(userSeen(1)), ...(build(l.fence) as object) }
          const r = await attempt(log.append({ botId: bot, expectedVersion: 0, fence: l.fence, events: [good, bad as never] }))
          expect(Either.isLeft(r) && r.left).toMatchObject({ _tag: "InvalidEvent", reason })
          expect(await run(log.streamVersion(bot))).toBe(0)
          const inPartition = await run(log.readPartition(log.partitionOf(bot)))
          expect(inPartition.some((d) => Either.isRight(d.event) && d.event.right.botId === bot)).toBe(false)
        })
      }

      it("refuses an empty append", async () => {
        const bot = freshBot("empty")
        const l = await lease(bot)
        const r = await attempt(log.append({ botId: bot, expectedVersion: 0, fence: l.fence, events: [] }))
        expect(Either.isLeft(r) && r.left).toMatchObject({ _tag: "InvalidEvent", reason: "BadRequest" })
      })
    })

    describe("fencing", () => {
      it("refuses appends from a bot nobody holds the lease of", async () => {
        const bot = freshBot("nolease")
        const r = await attempt(log.append({ botId: bot, expectedVersion: 0, fence: 1, events: [newEvent(updateReceived(1))] }))
        expect(Either.isLeft(r) && r.left._tag).toBe("StaleFence")
        expect(await run(log.streamVersion(bot))).toBe(0)
      })

      it("lets only the current lease holder write once the lease changed hands", async () => {
        const bot = freshBot("fence")
        const a = await lease(bot, "node-a", 300)
        expect(await run(log.acquireLease(bot, "node-b", 300))).toBeNull()
        await run(log.append({ botId: bot, expectedVersion: 0, fence: a.fence, events: [newEvent(updateReceived(1))] }))
        await sleep(450)
        const b = await lease(bot, "node-b", 30_000)
        expect(b.fence).toBeGreaterThan(a.fence)
        const stale = await attempt(log.append({ botId: bot, expectedVersion: 1, fence: a.fence, events: [newEvent(updateReceived(2))] }))
        expect(Either.isLeft(stale) && stale.left).toMatchObject({ _tag: "StaleFence", fence: a.fence, current: b.fence })
        expect(await run(log.renewLease(a, 1000))).toBeNull()
        const ok = await run(log.append({ botId: bot, expectedVersion: 1, fence: b.fence, events: [newEvent(updateReceived(2))] }))
        expect(ok.version).toBe(2)
        const events = await run(log.readStream(bot))
        expect(events.map((e) => e.data._tag === "UpdateReceived" && e.data.updateId)).toEqual([1, 2])
      })

      it("renews a held lease, re-acquires its own without a new fence, and fences off after release", async () => {
        const bot = freshBot("renew")
        const a = await lease(bot, "node-a", 400)
        const renewed = await run(log.renewLease(a, 30_000))
        expect(renewed?.fence).toBe(a.fence)
        await sleep(500)
        expect(await run(log.acquireLease(bot, "node-b", 1000))).toBeNull()
        const again = await lease(bot, "node-a")
        expect(again.fence).toBe(a.fence)
        expect((await run(log.readLease(bot)))?.nodeId).toBe("node-a")
        expect(await run(log.releaseLease(again))).toBe(true)
        expect(await run(log.readLease(bot))).toBeNull()
        const afterRelease = await attempt(log.append({ botId: bot, expectedVersion: 0, fence: a.fence, events: [newEvent(updateReceived(1))] }))
        expect(Either.isLeft(afterRelease) && afterRelease.left._tag).toBe("StaleFence")
        const b = await lease(bot, "node-b")
        expect(b.fence).toBeGreaterThan(a.fence)
      })
    })

    it("racing writers leave a gapless stream; every loser gets a typed conflict", async () => {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 2, max: 6 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), async (writers, appendsEach, perAppend) => {
          const bot = freshBot("race")
          const l = await lease(bot)
          const conflicts: AppendError[] = []
          const written: string[] = []
          const writer = (w: number) =>
            Effect.gen(function* () {
              for (let k = 0; k < appendsEach; k++) {
                for (;;) {
                  const version = yield* log.streamVersion(bot)
                  const events = Array.from({ length: perAppend }, (_, j) => newEvent(userSeen(w * 1000 + k * 10 + j), { eventId: `w${w}-${k}-${j}-${bot}` }))
                  const r = yield* Effect.either(log.append({ botId: bot, expectedVersion: version, fence: l.fence, events }))
                  if (Either.isRight(r)) {
                    written.push(...events.map((e) => e.eventId!))
                    break
                  }
                  conflicts.push(r.left)
                  yield* Effect.yieldNow()
                }
              }
            })
          await run(Effect.all(Array.from({ length: writers }, (_, w) => writer(w)), { concurrency: "unbounded" }))
          const stream = await run(log.readStream(bot))
          expect(stream.map((e) => e.version)).toEqual(Array.from({ length: writers * appendsEach * perAppend }, (_, i) => i + 1))
          expect(new Set(stream.map((e) => e.eventId))).toEqual(new Set(written))
          expect(conflicts.every((c) => c._tag === "WrongExpectedVersion")).toBe(true)
        }),
        { numRuns: 8 }
      )
    })

    describe("consumer groups", () => {
      const fill = async (partition: number, n: number, label: string) => {
        const [bot] = botsInPartition(log, partition, 1, label)
        const l = await lease(bot!)
        await run(log.append({ botId: bot!, expectedVersion: 0, fence: l.fence, events: Array.from({ length: n }, (_, i) => newEvent(updateReceived(i + 1))) }))
        return bot!
      }

      it("competing consumers share the entries, each delivered to one of them", async () => {
        const p = 5
        await fill(p, 10, "compete")
        await run(log.ensureGroup(p, "g-compete", "start"))
        await run(log.ensureGroup(p, "g-compete", "start"))
        const all = (await run(log.readPartition(p))).map((d) => d.position)
        const a = await run(log.readGroup({ partition: p, group: "g-compete", consumer: "a", count: 4 }))
        const b = await run(log.readGroup({ partition: p, group: "g-compete", consumer: "b", count: 100 }))
        expect([...a, ...b].map((d) => d.position)).toEqual(all)
        expect(a.every((d) => d.deliveryCount === 1)).toBe(true)
        expect(await run(log.pendingCount(p, "g-compete"))).toBe(all.length)
        await run(log.ack(p, "g-compete", a.map((d) => d.position)))
        await run(log.ack(p, "g-compete", b.map((d) => d.position)))
        expect(await run(log.pendingCount(p, "g-compete"))).toBe(0)
        expect(await run(log.readGroup({ partition: p, group: "g-compete", consumer: "a", count: 10 }))).toEqual([])
      })

      it("a group created at the end sees only new entries", async () => {
        const p = 6
        await fill(p, 3, "end-old")
        await run(log.ensureGroup(p, "g-end", "end"))
        const bot = await fill(p, 2, "end-new")
        const got = await run(log.readGroup({ partition: p, group: "g-end", consumer: "a", count: 10 }))
        expect(got.map((d) => Either.getOrThrow(d.event).botId)).toEqual([bot, bot])
      })

      it("redelivers what a dead consumer left pending, after the idle time", async () => {
        const p = 7
        await fill(p, 4, "dead")
        await run(log.ensureGroup(p, "g-dead", "start"))
        const taken = await run(log.readGroup({ partition: p, group: "g-dead", consumer: "dies", count: 100 }))
        expect(taken.length).toBeGreaterThanOrEqual(4)
        const tooSoon = await run(log.reclaim({ partition: p, group: "g-dead", consumer: "heir", minIdleMs: 60_000, count: 100 }))
        expect(tooSoon.deliveries).toEqual([])
        await sleep(150)
        const re = await run(log.reclaim({ partition: p, group: "g-dead", consumer: "heir", minIdleMs: 100, count: 100 }))
        expect(re.deliveries.map((d) => d.position)).toEqual(taken.map((d) => d.position))
        expect(re.deliveries.every((d) => d.deliveryCount === 2)).toBe(true)
        expect(re.deliveries.map((d) => Either.getOrThrow(d.event).eventId)).toEqual(taken.map((d) => Either.getOrThrow(d.event).eventId))
      })

      it("acks away entries trimmed while pending instead of looping on them", async () => {
        const p = 8
        const trimmed = await fill(p, 5, "trim")
        await run(log.ensureGroup(p, "g-trim", "start"))
        // every entry of the partition: earlier tests of the suite may have left more than a hundred there
        const taken = await run(log.readGroup({ partition: p, group: "g-trim", consumer: "dies", count: 100_000 }))
        const last = taken.at(-1)!.position
        const positions = taken.map((d) => d.position)
        // trim everything up to and including the last entry read (a later entry marks the bound),
        // the bot's stream too, as the trimmer does (on Postgres that is what removes its rows)
        const bot = await fill(p, 1, "trim-bound")
        const bound = (await run(log.readPartition(p))).find((d) => Either.isRight(d.event) && d.event.right.botId === bot)!.position
        const streams = new Map<string, number>()
        for (const d of taken) {
          const e = Either.getOrThrow(d.event)
          streams.set(e.botId, Math.max(streams.get(e.botId) ?? 0, e.version))
        }
        expect(streams.get(trimmed)).toBe(5)
        for (const [b, v] of streams) await run(log.trimStream(b, v + 1))
        await run(log.trimPartition(p, bound))
        await sleep(30)
        const re = await run(log.reclaim({ partition: p, group: "g-trim", consumer: "heir", minIdleMs: 10, count: 100 }))
        expect(re.deliveries).toEqual([])
        expect([...re.trimmedAcked].sort()).toEqual([...positions].sort())
        expect(await run(log.pendingCount(p, "g-trim"))).toBe(0)
        const rest = await run(log.readPartition(p))
        expect(rest.some((d) => d.position === last)).toBe(false)
      })
    })

    describe("poison entries and dead letters", () => {
      it("delivers an undecodable entry as a typed error, and the consumer dead-letters it and goes on", async () => {
        const p = 9
        const [bot] = botsInPartition(log, p, 1, "poison")
        const l = await lease(bot!)
        await run(log.ensureGroup(p, "g-poison", "end"))
        await subject.injectRaw(p, { eventId: "raw-1", botId: bot!, v: "1", type: "UserSeen", schemaVersion: "2", occurredAt: "2026-11-26T10:00:00Z", correlationId: "c", causationId: "", actor: "system", data: "{not json" })
        await subject.injectRaw(p, { eventId: "raw-2", botId: bot!, v: "1", type: "NoSuchEvent", schemaVersion: "1", occurredAt: "2026-11-26T10:00:00Z", correlationId: "c", causationId: "", actor: "system", data: "{}" })
        await run(log.append({ botId: bot!, expectedVersion: 0, fence: l.fence, events: [newEvent(updateReceived(1))] }))
        const seen: string[] = []
        const r = await run(pollOnce({ log, partition: p, group: "g-poison", consumer: "c1", handle: (e) => Effect.sync(() => void seen.push(e.eventId)) }))
        expect(r).toMatchObject({ handled: 1, deadLettered: 2 })
        expect(seen).toHaveLength(1)
        const dlq = (await run(log.readDeadLetters(p))).filter((d) => d.group === "g-poison")
        expect(dlq.map((d) => d.reason)).toEqual([expect.stringContaining("MalformedJson"), expect.stringContaining("UnknownType")])
        expect(dlq[0]!.raw["eventId"]).toBe("raw-1")
        expect(await run(log.pendingCount(p, "g-poison"))).toBe(0)
      })

      it("dead-letters an entry whose handler keeps failing, with the handler's reason", async () => {
        const p = 10
        const [bot] = botsInPartition(log, p, 1, "failing")
        const l = await lease(bot!)
        await run(log.ensureGroup(p, "g-fail", "end"))
        await run(log.append({ botId: bot!, expectedVersion: 0, fence: l.fence, events: [newEvent(updateReceived(1)), newEvent(updateReceived(2))] }))
        const handled: number[] = []
        const handle = (e: { version: number }) =>
          e.version === 1 ? Effect.fail(new Error("projection exploded")) : Effect.sync(() => void handled.push(e.version))
        const opts = { log, partition: p, group: "g-fail", consumer: "c1", handle, maxDeliveries: 3, reclaimIdleMs: 0 }
        const first = await run(pollOnce(opts))
        expect(first).toMatchObject({ handled: 1, failed: 1, deadLettered: 0 })
        await run(pollOnce(opts))
        const third = await run(pollOnce(opts))
        expect(third.deadLettered).toBe(1)
        expect(handled).toEqual([2])
        const dlq = (await run(log.readDeadLetters(p))).filter((d) => d.group === "g-fail")
        expect(dlq).toHaveLength(1)
        expect(dlq[0]).toMatchObject({ deliveryCount: 3, reason: expect.stringContaining("projection exploded") })
        expect(await run(log.pendingCount(p, "g-fail"))).toBe(0)
      })
    })

    it("upcasts an event stored at an older schema version on read", async () => {
      const p = 11
      const [bot] = botsInPartition(log, p, 1, "upcast")
      await subject.injectRaw(p, { eventId: "old-1", botId: bot!, v: "1", type: "UserSeen", schemaVersion: "1", occurredAt: "2026-11-26T10:00:00Z", correlationId: "c", causationId: "", actor: "system", data: JSON.stringify({ userId: 5, name: "Ada King Lovelace", at: "2026-11-26T10:00:00Z" }) })
      const read = (await run(log.readPartition(p))).filter((d) => d.raw["eventId"] === "old-1")
      expect(read).toHaveLength(1)
      const e = Either.getOrThrow(read[0]!.event)
      expect(e.schemaVersion).toBe(2)
      expect(e.data).toEqual({ _tag: "UserSeen", userId: 5, firstName: "Ada", lastName: "King Lovelace", at: "2026-11-26T10:00:00Z" } satisfies DomainEvent)
    })

    describe("what the trimmer relies on", () => {
      it("reports each group's cursor and oldest pending entry", async () => {
        const p = 12
        const [bot] = botsInPartition(log, p, 1, "progress")
        const l = await lease(bot!)
        await run(log.ensureGroup(p, "g-progress", "end"))
        expect((await run(log.groupProgress(p))).find((g) => g.group === "g-progress")).toMatchObject({ oldestPending: null })
        const r = await run(log.append({ botId: bot!, expectedVersion: 0, fence: l.fence, events: Array.from({ length: 4 }, (_, i) => newEvent(updateReceived(i + 1))) }))
        const got = await run(log.readGroup({ partition: p, group: "g-progress", consumer: "c", count: 3 }))
        expect(got.map((d) => d.position)).toEqual(r.positions.slice(0, 3))
        await run(log.ack(p, "g-progress", [r.positions[0]!, r.positions[2]!]))
        const mid = (await run(log.groupProgress(p))).find((g) => g.group === "g-progress")
        expect(mid).toEqual({ group: "g-progress", lastDelivered: r.positions[2], oldestPending: r.positions[1] })
        await run(log.ack(p, "g-progress", [r.positions[1]!]))
        expect((await run(log.groupProgress(p))).find((g) => g.group === "g-progress")).toEqual({ group: "g-progress", lastDelivered: r.positions[2], oldestPending: null })
        expect(await run(log.groupProgress(13))).toEqual([])
      })

      it("reports a group that was handed nothing yet with no cursor", async () => {
        const p = 15
        await run(log.ensureGroup(p, "g-fresh", "start"))
        const g = (await run(log.groupProgress(p))).find((x) => x.group === "g-fresh")
        // a group from the start of a log with entries has been handed none of them yet
        expect(g).toEqual({ group: "g-fresh", lastDelivered: null, oldestPending: null })
      })

      it("records when each event was appended, not decreasing with the version", async () => {
        const bot = freshBot("recorded")
        const l = await lease(bot)
        const before = Date.now() - 60_000
        await run(log.append({ botId: bot, expectedVersion: 0, fence: l.fence, events: [newEvent(updateReceived(1), { occurredAt: "2020-01-01T00:00:00.000Z" })] }))
        await sleep(5)
        await run(log.append({ botId: bot, expectedVersion: 1, fence: l.fence, events: [newEvent(updateReceived(2), { occurredAt: "2019-01-01T00:00:00.000Z" })] }))
        const read = await run(log.readStream(bot))
        const times = read.map((e) => Date.parse(e.recordedAt ?? ""))
        expect(times.every((t) => t > before && t < Date.now() + 60_000)).toBe(true)
        expect(times[1]!).toBeGreaterThanOrEqual(times[0]!)
        // (other tests leave undecodable entries in some partitions: only this bot's are looked at)
        const fromPartition = (await run(log.readPartition(log.partitionOf(bot)))).flatMap((d) => (Either.isRight(d.event) && d.event.right.botId === bot ? [d.event.right] : []))
        expect(fromPartition.map((e) => e.recordedAt)).toEqual(read.map((e) => e.recordedAt))
      })

      it("keeps a bot's window when its partition log is trimmed past it: streams go with trimStream", async () => {
        const p = 14
        const [bot, other] = botsInPartition(log, p, 2, "window")
        const lb = await lease(bot!)
        const lo = await lease(other!)
        const rb = await run(log.append({ botId: bot!, expectedVersion: 0, fence: lb.fence, events: Array.from({ length: 4 }, (_, i) => newEvent(updateReceived(i + 1))) }))
        const ro = await run(log.append({ botId: other!, expectedVersion: 0, fence: lo.fence, events: [newEvent(updateReceived(1))] }))
        await run(log.trimStream(bot!, 3))
        await run(log.trimPartition(p, ro.positions[0]!))
        // the stream keeps what its own trim left, whatever the partition trim removed
        expect((await run(log.readStream(bot!))).map((e) => e.version)).toEqual([3, 4])
        const left = (await run(log.readPartition(p))).map((d) => d.position)
        expect(left).toContain(ro.positions[0])
        expect(left).not.toContain(rb.positions[0])
        expect(left).not.toContain(rb.positions[1])
      })
    })

    it("trims a bot stream below a version and keeps appending after it", async () => {
      const bot = freshBot("trimstream")
      const l = await lease(bot)
      await run(log.append({ botId: bot, expectedVersion: 0, fence: l.fence, events: Array.from({ length: 5 }, (_, i) => newEvent(updateReceived(i + 1))) }))
      expect(await run(log.trimStream(bot, 4))).toBe(3)
      expect((await run(log.readStream(bot))).map((e) => e.version)).toEqual([4, 5])
      expect(await run(log.streamVersion(bot))).toBe(5)
      const r = await run(log.append({ botId: bot, expectedVersion: 5, fence: l.fence, events: [newEvent(updateReceived(6))] }))
      expect(r.version).toBe(6)
      // trimmed to nothing, the stream keeps its version: the next append is 7
      await run(log.trimStream(bot, 7))
      expect(await run(log.readStream(bot))).toEqual([])
      expect(await run(log.streamVersion(bot))).toBe(6)
      expect((await run(log.append({ botId: bot, expectedVersion: 6, fence: l.fence, events: [newEvent(updateReceived(7))] }))).version).toBe(7)
    })
  })
