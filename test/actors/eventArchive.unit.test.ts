import { Effect, Either } from "effect"
import { describe, expect, it } from "vitest"
import { readArchivedRange } from "../../src/actors/eventArchive.js"
import type { EventArchiveService } from "../../src/actors/eventArchive.js"
import type { RecordedEvent } from "../../src/events/schema/envelope.js"

const event = (version: number): RecordedEvent => ({
  eventId: `e${version}`, botId: "b", version, type: "BotStarted", schemaVersion: 1, occurredAt: "2026-01-01T00:00:00.000Z",
  correlationId: "c", causationId: null, actor: "system", data: { _tag: "BotStarted", nodeId: "n", fence: 1 } as RecordedEvent["data"],
  position: `${version}-0`, partition: 0
})
const archiveOf = (versions: ReadonlyArray<number>): EventArchiveService => ({
  readStream: (_botId, from, to) => Effect.succeed(versions.filter((v) => v >= from && v <= to).map(event))
})
const read = (archive: EventArchiveService | undefined, from: number, to: number) =>
  Effect.runSync(Effect.either(readArchivedRange(archive, "b", from, to)))

describe("readArchivedRange", () => {
  it("returns every version of the range, in order", () => {
    const r = read(archiveOf([1, 2, 3, 4, 5]), 2, 4)
    expect(Either.getOrThrow(r).map((e) => e.version)).toEqual([2, 3, 4])
  })

  it("names the first version the archive lacks, in the middle or at the end of the range", () => {
    expect(Either.flip(read(archiveOf([1, 2, 4, 5]), 1, 5))).toMatchObject(Either.right({ _tag: "HistoryMissing", missingFrom: 3, missingTo: 5, reason: "NotArchived" }))
    expect(Either.flip(read(archiveOf([1, 2]), 1, 5))).toMatchObject(Either.right({ missingFrom: 3, missingTo: 5, reason: "NotArchived" }))
  })

  it("without an archive the whole range is missing", () => {
    expect(Either.flip(read(undefined, 1, 9))).toMatchObject(Either.right({ _tag: "HistoryMissing", botId: "b", missingFrom: 1, missingTo: 9, reason: "NoArchive" }))
  })
})
