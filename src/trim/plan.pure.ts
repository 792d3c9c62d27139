import { comparePositions } from "../projections/mapping/positions.js"

/*
 * What the hot-log trimmer may remove, decided from facts read beforehand (pure: no clock, no I/O).
 * The rules (docs/redis.md "Trimming"):
 * - a partition-log entry goes once every consumer group acknowledged it, it is older than the
 *   age window, and (an event of a bot stream) the archive holds it;
 * - a bot stream keeps everything above its latest snapshot, its newest HOT_LOG_EVENTS events,
 *   everything not archived, and everything its partition log still keeps.
 */

/** One partition-log entry as the trimmer sees it. */
export interface TrimEntry {
  readonly position: string
  /** When the log recorded it (ms); undefined when unknown (an entry that does not decode). */
  readonly recordedAtMs: number | undefined
  /** The bot-stream event the entry is; null for a foreign entry, in no stream. */
  readonly event: { readonly botId: string; readonly version: number; readonly eventId: string } | null
}

/** A consumer group's progress (the log port's GroupProgress). */
export interface GroupMark {
  readonly group: string
  readonly lastDelivered: string | null
  readonly oldestPending: string | null
}

/** Why trimming stops at an entry: the first entry of the partition log that must stay. */
export type Hold =
  | { readonly reason: "NotAcked"; readonly position: string; readonly group: string }
  | { readonly reason: "TooYoung"; readonly position: string }
  /**
   * Acked by every group yet not archived: the projectors dead-lettered it (or an earlier version of
   * the bot), so it will not be archived by waiting. Trimming stays held here until someone acts.
   */
  | { readonly reason: "NotArchived"; readonly position: string; readonly botId: string; readonly version: number }

export interface PartitionCut {
  /** The entries to remove, a prefix of the batch read. */
  readonly entries: ReadonlyArray<TrimEntry>
  /** Why the cut ends before the batch's end (null: the whole batch goes). */
  readonly held: Hold | null
}

/** The first group that still needs the entry: not handed it yet, or holding it (or an earlier one) pending. */
export const groupNeeding = (groups: ReadonlyArray<GroupMark>, position: string): string | null => {
  for (const g of groups) {
    if (g.lastDelivered === null || comparePositions(position, g.lastDelivered) > 0) return g.group
    if (g.oldestPending !== null && comparePositions(position, g.oldestPending) >= 0) return g.group
  }
  return null
}

/**
 * The prefix of `entries` (a partition log's head, in log order) that may be removed. The log is
 * in recorded-time order, so an entry of unknown time is old enough when a later one is.
 */
export const partitionCut = (o: {
  readonly entries: ReadonlyArray<TrimEntry>
  readonly groups: ReadonlyArray<GroupMark>
  /** Per bot: versions 1..watermark are all archived. Absent: none known to be. */
  readonly watermarks: ReadonlyMap<string, number>
  readonly nowMs: number
  /** Entries recorded less than this long ago stay. */
  readonly maxAgeMs: number
}): PartitionCut => {
  const cutoff = o.nowMs - o.maxAgeMs
  // the last entry known old enough: entries after it (or of unknown time after it) stay
  let oldEnough = -1
  for (let i = 0; i < o.entries.length; i++) {
    const t = o.entries[i]!.recordedAtMs
    if (t === undefined) continue
    if (t > cutoff) break
    oldEnough = i
  }
  for (let i = 0; i < o.entries.length; i++) {
    const e = o.entries[i]!
    const needs = groupNeeding(o.groups, e.position)
    if (needs !== null) return { entries: o.entries.slice(0, i), held: { reason: "NotAcked", position: e.position, group: needs } }
    if (i > oldEnough) return { entries: o.entries.slice(0, i), held: { reason: "TooYoung", position: e.position } }
    if (e.event !== null && e.event.version > (o.watermarks.get(e.event.botId) ?? 0)) {
      const { botId, version } = e.event
      return { entries: o.entries.slice(0, i), held: { reason: "NotArchived", position: e.position, botId, version } }
    }
  }
  return { entries: o.entries, held: null }
}

/** Per bot of a cut: the highest version among its entries (its stream may be trimmed up to there, no further). */
export const botsOfCut = (entries: ReadonlyArray<TrimEntry>): Map<string, number> => {
  const out = new Map<string, number>()
  for (const e of entries) {
    if (e.event !== null) out.set(e.event.botId, Math.max(out.get(e.event.botId) ?? 0, e.event.version))
  }
  return out
}

/**
 * The version a bot stream is trimmed below (versions < the result go): the smallest of the
 * limits, each a version that must stay. At least 1 (nothing to trim).
 */
export const streamTrimBelow = (o: {
  /** The bot's highest version in the partition entries being trimmed. */
  readonly highestInCut: number
  /** Its latest snapshot's version (0: none): versions above it are what hydration folds. */
  readonly snapshotVersion: number
  /** Versions 1..watermark are archived. */
  readonly watermark: number
  /** The stream's version (its newest event). */
  readonly streamVersion: number
  /** Newest events kept whatever else holds (at least 1: a stream is never emptied). */
  readonly hotEvents: number
}): number =>
  Math.max(
    1,
    Math.min(o.highestInCut + 1, o.snapshotVersion + 1, o.watermark + 1, o.streamVersion - Math.max(1, o.hotEvents) + 1)
  )

/**
 * The smallest position above `position` (trims take an exclusive bound): positions are `<a>-<b>`
 * (Redis ids, Postgres `<tx>-<seq>`) or plain numbers (the memory log), compared part by part.
 */
export const nextPosition = (position: string): string => {
  const dash = position.lastIndexOf("-")
  if (dash === -1) return String(BigInt(position) + 1n)
  return `${position.slice(0, dash)}-${BigInt(position.slice(dash + 1)) + 1n}`
}
