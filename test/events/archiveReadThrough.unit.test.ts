import { Effect, Either } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import type { EventArchiveService } from "../../src/actors/eventArchive.js"
import { withArchiveReadThrough } from "../../src/events/archiveReadThrough.js"
import type { EventLogService, ReadStreamOptions } from "../../src/events/eventLog.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import type { RecordedEvent } from "../../src/events/schema/envelope.js"
import { newEvent, updateReceived } from "../support/events.js"

/*
 * The read-through over the memory log and an archive holding what was appended (as the
 * projectors would have archived it): a trimmed stream reads exactly as the untrimmed one did,
 * whatever the range, direction and page size.
 */

const run = Effect.runPromise

const setup = async (length: number) => {
  const log = makeMemoryEventLog({ partitions: 4 })
  const lease = (await run(log.acquireLease("bot", "n", 60_000)))!
  if (length > 0) {
    await run(log.append({ botId: "bot", expectedVersion: 0, fence: lease.fence, events: Array.from({ length }, (_, i) => newEvent(updateReceived(i + 1))) }))
  }
  const archived = new Map<number, RecordedEvent>()
  for (const e of await run(log.readStream("bot"))) archived.set(e.version, e)
  const archive: EventArchiveService = {
    readStream: (_botId, from, to) => Effect.sync(() => [...archived.values()].filter((e) => e.version >= from && e.version <= to))
  }
  return { log, lease, archived, archive }
}

describe("reading a trimmed stream through the archive", () => {
  it("reads as the untrimmed stream did, for any range, direction and limit (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 1, max: 45 }),
        fc.record({ from: fc.option(fc.integer({ min: 0, max: 45 }), { nil: undefined }), limit: fc.option(fc.integer({ min: 0, max: 50 }), { nil: undefined }), backward: fc.boolean() }),
        async (length, trimBelow, o) => {
          const { log, archive } = await setup(length)
          const opts: ReadStreamOptions = { ...(o.from === undefined ? {} : { from: o.from }), ...(o.limit === undefined ? {} : { limit: o.limit }), direction: o.backward ? "backward" : "forward" }
          const untrimmed = await run(log.readStream("bot", opts))
          await run(log.trimStream("bot", trimBelow))
          expect(await run(withArchiveReadThrough(log, archive).readStream("bot", opts))).toEqual(untrimmed)
        }
      ),
      { numRuns: 300 }
    )
    // 300 runs of memory logs: seconds on a busy machine
  }, 60_000)

  it("fails with HistoryMissing (as the log's LogUnavailable) rather than return a stream with a hole", async () => {
    const { log, archived, archive } = await setup(10)
    await run(log.trimStream("bot", 8))
    archived.delete(4)
    const r = await run(Effect.either(withArchiveReadThrough(log, archive).readStream("bot")))
    expect(Either.isLeft(r) && r.left).toMatchObject({ _tag: "LogUnavailable", cause: { _tag: "HistoryMissing", missingFrom: 4, missingTo: 7 } })
  })

  it("never mistakes versions appended while it reads for trimmed ones", async () => {
    const { log, lease, archive } = await setup(5)
    await run(log.trimStream("bot", 6)) // every event trimmed: the stream is empty, at version 5
    let appended = false
    // an append lands between the first (empty) hot read and the version read
    const racing: EventLogService = {
      ...log,
      streamVersion: (botId) =>
        Effect.suspend(() => {
          if (appended) return log.streamVersion(botId)
          appended = true
          return log.append({ botId, expectedVersion: 5, fence: lease.fence, events: [newEvent(updateReceived(6))] }).pipe(
            Effect.orDie,
            Effect.zipRight(log.streamVersion(botId))
          )
        })
    }
    const read = await run(withArchiveReadThrough(racing, archive).readStream("bot", { from: 6 }))
    expect(read.map((e) => e.version)).toEqual([6])
  })
})
