import { Effect } from "effect"
import type { InvalidEvent, LogUnavailable } from "../../events/errors.js"
import type { EventLogService } from "../../events/eventLog.js"
import { foldImported } from "./plan.pure.js"
import type { ImportedEntry, ReadBackCheck } from "./plan.pure.js"

/*
 * How the import reads a bot's stream: page by page, each page folded into the index of imported
 * records (checksums checked against what the log returned, see ReadBackCheck) and then dropped. Holding a whole
 * read-back in memory made the garbage collector the largest cost of a 100k-record import.
 */

/** Events per page when reading a bot's stream (replies of a few MB: larger pages decode slower). */
export const READ_PAGE_SIZE = 2000

/** Pages requested at once when the range is known, so the log prepares the next while this one is checked. */
export const PAGES_IN_FLIGHT = 4

type ReadError = LogUnavailable | InvalidEvent

/**
 * Reads the whole stream in order, folding every LegacyRecordImported into `into`.
 * Returns how many events it holds and the version of the last one (0 when empty).
 */
export const indexWholeStream = (
  log: EventLogService,
  botId: string,
  into: Map<string, ImportedEntry>,
  check: ReadBackCheck,
  pageSize = READ_PAGE_SIZE
): Effect.Effect<{ readonly events: number; readonly lastVersion: number }, ReadError> =>
  Effect.gen(function* () {
    let events = 0
    let lastVersion = 0
    let next = 1
    for (;;) {
      const page = yield* log.readStream(botId, { from: next, limit: pageSize })
      foldImported(into, page, check)
      events += page.length
      if (page.length > 0) lastVersion = page[page.length - 1]!.version
      if (page.length < pageSize) return { events, lastVersion }
      next = lastVersion + 1
    }
  })

/**
 * Reads versions `from`..`to` back (what an append just wrote), `inFlight` pages at a time
 * (PAGES_IN_FLIGHT by default),
 * folding each into `into` as it arrives. The order pages arrive in does not matter: the fold keeps
 * the newest version of each record. Calls `onPage` with the number of events each page held.
 */
export const indexRange = (
  log: EventLogService,
  botId: string,
  range: { readonly from: number; readonly to: number },
  into: Map<string, ImportedEntry>,
  check: ReadBackCheck,
  options: { readonly pageSize?: number; readonly inFlight?: number; readonly onPage?: (events: number) => void } = {}
): Effect.Effect<void, ReadError> => {
  const pageSize = Math.max(1, options.pageSize ?? READ_PAGE_SIZE)
  const starts: Array<number> = []
  for (let v = range.from; v <= range.to; v += pageSize) starts.push(v)
  return Effect.forEach(
    starts,
    (start) =>
      log.readStream(botId, { from: start, limit: Math.min(pageSize, range.to - start + 1) }).pipe(
        Effect.map((page) => {
          foldImported(into, page, check, range.to)
          options.onPage?.(page.length)
        })
      ),
    { concurrency: Math.max(1, options.inFlight ?? PAGES_IN_FLIGHT), discard: true }
  )
}
