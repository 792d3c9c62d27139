/**
 * Which update_ids a bot has handled lately, in bounded space.
 *
 * Telegram redelivers an update whose webhook answer it did not see, for up to 24 h, and an
 * update_id is only sequential while a bot is busy (after a week without updates the next one is
 * random). Kept as a set of every id would grow with traffic (a busy bot handles millions a day);
 * a high-water mark alone would drop an update that arrives late, after one with a higher id
 * (webhook deliveries run in parallel, and a delivery that failed is retried later).
 *
 * So the window holds runs of consecutive ids, each with the recorded time of its newest id:
 * sequential traffic is one run whatever its volume, and each hole (an id not seen yet between
 * two seen ones) costs one more run. A run whose newest id is older than the window is forgotten
 * (Telegram no longer redelivers any of it). Past `MAX_RUNS` runs, the two runs with the smallest
 * hole between them are merged: the ids in that hole count as seen from then on. That is the one
 * way a new update can be dropped, and it takes more than `MAX_RUNS` holes open at once within
 * 25 h; redeliveries are never handled twice.
 *
 * Pure and deterministic in (ids, recorded times): replay rebuilds the same window.
 */

/** [first id, last id, recorded time (ms) of the newest id added to the run]. */
export type Run = readonly [lo: number, hi: number, lastAt: number]

export interface DedupeWindow {
  /** Disjoint, non-adjacent runs, ordered by id. */
  readonly runs: ReadonlyArray<Run>
}

/** How long a handled update_id is remembered: Telegram redelivers for up to 24 h. */
export const DEDUPE_WINDOW_MS = 25 * 60 * 60 * 1000

/** Most runs kept; about 24 bytes each in a snapshot. */
export const MAX_RUNS = 1024

export const emptyWindow: DedupeWindow = { runs: [] }

/** Index of the first run whose `hi` is ≥ id (runs.length when none). */
const search = (runs: ReadonlyArray<Run>, id: number): number => {
  let lo = 0
  let hi = runs.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (runs[mid]![1] < id) lo = mid + 1
    else hi = mid
  }
  return lo
}

/**
 * Whether `id` was added at a time within the window before `atMs`. An unknown time (NaN) keeps
 * every id: better to drop a redelivery than to decide on a clock we cannot read.
 */
export const hasSeen = (w: DedupeWindow, id: number, atMs: number): boolean => {
  const i = search(w.runs, id)
  const run = w.runs[i]
  if (run === undefined || run[0] > id) return false
  return !Number.isFinite(atMs) || run[2] >= atMs - DEDUPE_WINDOW_MS
}

/** Merges the two neighbours with the smallest hole between them (the oldest such pair on a tie). */
const mergeSmallestHole = (runs: Run[]): void => {
  let best = 0
  let bestGap = Number.POSITIVE_INFINITY
  let bestAt = Number.POSITIVE_INFINITY
  for (let i = 0; i + 1 < runs.length; i++) {
    const gap = runs[i + 1]![0] - runs[i]![1]
    const at = Math.max(runs[i]![2], runs[i + 1]![2])
    if (gap < bestGap || (gap === bestGap && at < bestAt)) {
      best = i
      bestGap = gap
      bestAt = at
    }
  }
  const a = runs[best]!
  const b = runs[best + 1]!
  runs.splice(best, 2, [a[0], b[1], Math.max(a[2], b[2])])
}

/**
 * The window with `id` added at recorded time `atMs` (a new window: states are immutable). Runs
 * that fell out of the window are dropped first, then runs are merged down to `MAX_RUNS`.
 */
export const addSeen = (w: DedupeWindow, id: number, atMs: number, maxRuns = MAX_RUNS): DedupeWindow => {
  const at = Number.isFinite(atMs) ? atMs : Number.MAX_SAFE_INTEGER
  const runs = w.runs
  const i = search(runs, id)
  const here = runs[i]
  if (here !== undefined && here[0] <= id) {
    // already in a run: refresh its time only
    if (here[2] >= at) return w
    const next = runs.slice()
    next[i] = [here[0], here[1], at]
    return { runs: next }
  }
  const before = i > 0 ? runs[i - 1] : undefined
  const joinsBefore = before !== undefined && before[1] === id - 1
  const joinsAfter = here !== undefined && here[0] === id + 1
  let next: Run[]
  if (joinsBefore && joinsAfter) {
    next = [...runs.slice(0, i - 1), [before![0], here![1], Math.max(before![2], here![2], at)], ...runs.slice(i + 1)]
  } else if (joinsBefore) {
    next = runs.slice()
    next[i - 1] = [before![0], id, Math.max(before![2], at)]
  } else if (joinsAfter) {
    next = runs.slice()
    next[i] = [id, here![1], Math.max(here![2], at)]
  } else {
    next = [...runs.slice(0, i), [id, id, at], ...runs.slice(i)]
  }
  if (next.length > 1 && Number.isFinite(atMs)) {
    const horizon = atMs - DEDUPE_WINDOW_MS
    if (next.some((r) => r[2] < horizon)) next = next.filter((r) => r[2] >= horizon)
  }
  while (next.length > maxRuns) mergeSmallestHole(next)
  return { runs: next }
}
