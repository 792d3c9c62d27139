import { Effect } from "effect"
import type { InvalidEvent, LogUnavailable } from "../events/errors.js"
import type { EventLogService } from "../events/eventLog.js"
import type { RecordedEvent } from "../events/schema/envelope.js"

/**
 * Reads a bot's stream forward, page by page, from version `from` up to `to` (inclusive; the end
 * when absent). Pages keep memory and round trips bounded on long streams.
 */
export const readStreamRange = (
  log: EventLogService,
  botId: string,
  options: { readonly from?: number; readonly to?: number; readonly pageSize?: number } = {}
): Effect.Effect<ReadonlyArray<RecordedEvent>, LogUnavailable | InvalidEvent> =>
  Effect.gen(function* () {
    const pageSize = options.pageSize ?? 5000
    const to = options.to ?? Number.MAX_SAFE_INTEGER
    const all: Array<RecordedEvent> = []
    let next = Math.max(1, options.from ?? 1)
    while (next <= to) {
      const limit = Math.min(pageSize, to - next + 1)
      const page = yield* log.readStream(botId, { from: next, limit })
      for (const e of page) if (e.version <= to) all.push(e)
      if (page.length < limit) break
      next = page[page.length - 1]!.version + 1
    }
    return all
  })

/** A bot's whole stream. */
export const readWholeStream = (log: EventLogService, botId: string, pageSize?: number) =>
  readStreamRange(log, botId, pageSize === undefined ? {} : { pageSize })

/**
 * The last `n` events of a bot at or below version `upTo` that `keep` accepts, in version order,
 * read backward page by page until `n` are found or the stream's start is reached (through the
 * archive when the log reads through to it): a filter applies to the whole history, not to the
 * last page only.
 */
export const lastMatching = (
  log: EventLogService,
  botId: string,
  keep: (e: RecordedEvent) => boolean,
  upTo: number,
  n: number,
  pageSize = 500
): Effect.Effect<ReadonlyArray<RecordedEvent>, LogUnavailable | InvalidEvent> =>
  Effect.gen(function* () {
    const found: RecordedEvent[] = []
    let top = upTo
    while (top >= 1 && found.length < n) {
      const page = yield* log.readStream(botId, { direction: "backward", from: top, limit: pageSize })
      if (page.length === 0) break
      for (const e of page) {
        if (found.length < n && keep(e)) found.push(e)
      }
      top = page[page.length - 1]!.version - 1
    }
    return found.sort((a, b) => a.version - b.version)
  })
