/**
 * Names of scheduled backups and which of them to delete. Pure: the time comes in as an argument.
 * A name is `backup-<UTC time>` (`backup-20261126T030000Z`), so names sort by time; a second
 * backup in the same second gets `-2`, `-3`...
 */

export const BACKUP_NAME = /^backup-(\d{8}T\d{6}Z)(?:-(\d+))?$/

/** `backup-20261126T030000Z` for `2026-11-26T03:00:00.000Z` (an ISO instant in UTC); with a suffix when the name is taken. */
export const backupName = (isoUtc: string, taken: ReadonlySet<string>): string => {
  const base = `backup-${isoUtc.replace(/\.\d+Z$/, "Z").replace(/[-:]/g, "")}`
  if (!taken.has(base)) return base
  for (let n = 2; ; n++) if (!taken.has(`${base}-${n}`)) return `${base}-${n}`
}

/** Orders names oldest first (time, then suffix). */
export const byAge = (a: string, b: string): number => {
  const ma = BACKUP_NAME.exec(a)
  const mb = BACKUP_NAME.exec(b)
  if (!ma || !mb) return a < b ? -1 : a > b ? 1 : 0
  if (ma[1] !== mb[1]) return ma[1]! < mb[1]! ? -1 : 1
  return Number(ma[2] ?? 1) - Number(mb[2] ?? 1)
}

export interface StoredBackup {
  readonly name: string
  /** Its manifest is there: the backup was written to the end. */
  readonly finished: boolean
}

/**
 * What retention deletes: finished backups beyond the newest `keep`, and unfinished ones (a run
 * that died half-way: no manifest) older than the newest finished backup — never the one being
 * written now, which is newer than every finished one.
 */
export const toDelete = (backups: ReadonlyArray<StoredBackup>, keep: number): ReadonlyArray<string> => {
  const named = backups.filter((b) => BACKUP_NAME.test(b.name))
  const finished = named.filter((b) => b.finished).map((b) => b.name).sort(byAge)
  const newest = finished[finished.length - 1]
  const stale = newest === undefined ? [] : named.filter((b) => !b.finished && byAge(b.name, newest) < 0).map((b) => b.name)
  return [...finished.slice(0, Math.max(0, finished.length - keep)), ...stale].sort(byAge)
}
