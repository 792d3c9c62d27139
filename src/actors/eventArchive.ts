import { Data, Effect } from "effect"
import type { InvalidEvent } from "../events/errors.js"
import type { RecordedEvent } from "../events/schema/envelope.js"

/** The archive (the system of record) could not be reached or failed. Retryable, like a log outage. */
export class ArchiveUnavailable extends Data.TaggedError("ArchiveUnavailable")<{ readonly operation: string; readonly cause: unknown }> {
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `events archive unavailable during ${this.operation}: ${cause}`
  }
}

/**
 * Part of a bot's history is in neither the hot log (trimmed) nor the archive: folding what is
 * left would give a wrong state, so the actor refuses to run. Not an outage (retrying changes
 * nothing until someone restores the versions), so it counts against the restart budget.
 */
export class HistoryMissing extends Data.TaggedError("HistoryMissing")<{
  readonly botId: string
  readonly missingFrom: number
  readonly missingTo: number
  readonly reason: "NoArchive" | "NotArchived"
}> {
  override get message() {
    const why = this.reason === "NoArchive" ? "this actor has no archive to read them from" : "the archive does not have them"
    return `bot ${this.botId}: events ${this.missingFrom}..${this.missingTo} were trimmed from the log and ${why}; refusing to run on a partial history`
  }
}

/**
 * The cold log, read back by version: where an actor finds the events the hot log no longer
 * has (trimmed below a snapshot that was then lost or invalidated by a schema change).
 */
export interface EventArchiveService {
  /** Versions `from`..`to` (inclusive) of the bot, decoded and upcast like the log's, in version order; the ones archived only. */
  readonly readStream: (botId: string, from: number, to: number) => Effect.Effect<ReadonlyArray<RecordedEvent>, ArchiveUnavailable | InvalidEvent>
}

/** Versions read from the archive per query (a gap may be a whole long history). */
export const ARCHIVE_PAGE = 1000

/**
 * Versions `from`..`to` of the bot from the archive, every one of them, or HistoryMissing naming
 * the first version it lacks.
 */
export const readArchivedRange = (
  archive: EventArchiveService | undefined,
  botId: string,
  from: number,
  to: number
): Effect.Effect<ReadonlyArray<RecordedEvent>, HistoryMissing | ArchiveUnavailable | InvalidEvent> => {
  if (!archive) return Effect.fail(new HistoryMissing({ botId, missingFrom: from, missingTo: to, reason: "NoArchive" }))
  return archive.readStream(botId, from, to).pipe(
    Effect.flatMap((events) => {
      const gapAt = events.findIndex((e, i) => e.version !== from + i)
      if (gapAt === -1 && events.length === to - from + 1) return Effect.succeed(events)
      const missingFrom = gapAt === -1 ? from + events.length : from + gapAt
      return Effect.fail(new HistoryMissing({ botId, missingFrom, missingTo: to, reason: "NotArchived" }))
    })
  )
}
