import { Effect } from "effect"
import { ARCHIVE_PAGE, readArchivedRange } from "../actors/eventArchive.js"
import type { EventArchiveService } from "../actors/eventArchive.js"
import { LogUnavailable } from "./errors.js"
import type { InvalidEvent } from "./errors.js"
import type { EventLogService, ReadStreamOptions } from "./eventLog.js"
import type { RecordedEvent } from "./schema/envelope.js"

type ReadError = LogUnavailable | InvalidEvent

/**
 * Versions `from`..`to` of a bot from the archive, page by page, every one of them: a version the
 * archive lacks fails the read (HistoryMissing, carried as the cause of a LogUnavailable so the
 * log's error type stays what every reader handles) instead of returning a stream with a hole.
 */
const fromArchive = (archive: EventArchiveService, botId: string, from: number, to: number): Effect.Effect<RecordedEvent[], ReadError> =>
  Effect.gen(function* () {
    const out: RecordedEvent[] = []
    for (let f = from; f <= to; f += ARCHIVE_PAGE) {
      const page = yield* readArchivedRange(archive, botId, f, Math.min(to, f + ARCHIVE_PAGE - 1)).pipe(
        Effect.catchTags({
          HistoryMissing: (cause) => Effect.fail(new LogUnavailable({ operation: "readStream", cause })),
          ArchiveUnavailable: (cause) => Effect.fail(new LogUnavailable({ operation: "readStream (events archive)", cause }))
        })
      )
      for (const e of page) out.push(e)
    }
    return out
  })

/**
 * The log with every bot stream whole again: `readStream` returns the versions the hot log
 * trimmed from the events archive (the cold log), in the same order and shape as the hot ones, so
 * `inspect`, `tail`, `replay`, `events --export`, `bots list` and a node loading a bot's profile
 * never see a trimmed stream. Everything else is the log itself.
 *
 * Cost: a read whose first version is in the hot log (the usual case) is the hot read alone; the
 * archive is asked only for the versions below the hot stream's first.
 *
 * Why it is correct while the log moves: a trim removes a prefix of a stream (only what the
 * archive holds), an append adds a suffix. Versions below the first one a hot read returned were
 * trimmed, so the archive has them. When a hot read returns nothing, the stream version is read
 * and the hot read repeated: versions up to that version that the second read still lacks were
 * trimmed, and anything appended in between shows in the second read.
 */
export const withArchiveReadThrough = (log: EventLogService, archive: EventArchiveService): EventLogService => {
  const forward = (botId: string, opts: ReadStreamOptions): Effect.Effect<ReadonlyArray<RecordedEvent>, ReadError> =>
    Effect.gen(function* () {
      const from = Math.max(1, Math.floor(opts.from ?? 1))
      const limit = opts.limit ?? Number.POSITIVE_INFINITY
      let hot = yield* log.readStream(botId, opts)
      if (limit <= 0 || (hot.length > 0 && hot[0]!.version <= from)) return hot
      let top: number
      if (hot.length > 0) top = hot[0]!.version - 1
      else {
        const version = yield* log.streamVersion(botId)
        if (version < from) return hot
        hot = yield* log.readStream(botId, opts)
        if (hot.length > 0 && hot[0]!.version <= from) return hot
        top = hot.length > 0 ? hot[0]!.version - 1 : version
      }
      const cold = yield* fromArchive(archive, botId, from, Math.min(top, from + limit - 1))
      const room = limit - cold.length
      return room >= hot.length ? cold.concat(hot) : cold.concat(hot.slice(0, room))
    })

  const backward = (botId: string, opts: ReadStreamOptions): Effect.Effect<ReadonlyArray<RecordedEvent>, ReadError> =>
    Effect.gen(function* () {
      const limit = opts.limit ?? Number.POSITIVE_INFINITY
      let hot = yield* log.readStream(botId, opts)
      if (hot.length >= limit) return hot
      let top: number
      if (hot.length > 0) top = hot[hot.length - 1]!.version - 1
      else {
        const version = yield* log.streamVersion(botId)
        const upTo = opts.from === undefined ? version : Math.min(version, Math.floor(opts.from))
        if (upTo < 1) return hot
        hot = yield* log.readStream(botId, opts)
        if (hot.length >= limit) return hot
        top = hot.length > 0 ? hot[hot.length - 1]!.version - 1 : upTo
      }
      if (top < 1) return hot
      const cold = yield* fromArchive(archive, botId, Math.max(1, top - (limit - hot.length) + 1), top)
      return hot.concat(cold.reverse())
    })

  return {
    ...log,
    readStream: (botId, opts = {}) => (opts.direction === "backward" ? backward(botId, opts) : forward(botId, opts))
  }
}
