import { Data } from "effect"
import type { Effect, Scope } from "effect"

/*
 * Where scheduled backups are kept: a folder (folderTarget.ts) or a bucket of an S3-compatible
 * store (s3Target.ts). A backup is a named set of files (the format of src/cli/backup, manifest.json
 * written last), so a backup without its manifest is unfinished. Both adapters take the same
 * calls, so the scheduler, verification, retention and the restore drill do not know which one
 * they use.
 */

/** The target could not be read or written: which backup or file, and why. */
export class TargetFailed extends Data.TaggedError("TargetFailed")<{ readonly where: string; readonly reason: string }> {
  override get message() {
    return `${this.where}: ${this.reason}`
  }
}

export interface TargetEntry {
  readonly name: string
  /** Its manifest.json is there. */
  readonly finished: boolean
}

export interface BackupTarget {
  /** Where, for people and the runs table: a folder path or s3://bucket/prefix (never credentials). */
  readonly label: string
  /** The backups in the target (their names match BACKUP_NAME), oldest first. */
  readonly list: Effect.Effect<ReadonlyArray<TargetEntry>, TargetFailed>
  /**
   * Stores a new backup `name`: `write` fills a local folder with its files (manifest last); the
   * folder target writes it in place, the S3 target uploads its files (the manifest last) and
   * removes the local copy.
   */
  readonly store: <A, E>(name: string, write: (dir: string) => Effect.Effect<A, E>) => Effect.Effect<A, E | TargetFailed>
  /** A file of a backup, as a stream of chunks (for verification without holding it in memory). */
  readonly read: (name: string, file: string) => Effect.Effect<AsyncIterable<Buffer>, TargetFailed>
  /** The backup's files in a local folder, for the scope (the S3 target downloads them and removes them after). */
  readonly local: (name: string) => Effect.Effect<string, TargetFailed, Scope.Scope>
  /** Deletes a backup, whole. */
  readonly remove: (name: string) => Effect.Effect<void, TargetFailed>
}

export const reasonOf = (e: unknown): string => (e instanceof Error ? e.message : String(e))
