import { Data } from "effect"

/** A `.sql` file in the migrations folder that cannot be a migration (bad name, duplicate number). */
export class MigrationFileInvalid extends Data.TaggedError("MigrationFileInvalid")<{
  readonly file: string
  readonly detail: string
}> {
  override get message() {
    return `migration ${this.file} refused: ${this.detail}`
  }
}

/**
 * An applied migration's file no longer matches what was applied. Refused: the database would not
 * be what the files describe. Write a new migration instead of editing an applied one.
 */
export class MigrationChanged extends Data.TaggedError("MigrationChanged")<{
  readonly file: string
  readonly appliedChecksum: string
  readonly fileChecksum: string
}> {
  override get message() {
    return `migration ${this.file} was edited after it was applied (applied sha256 ${this.appliedChecksum.slice(0, 12)}, file sha256 ${this.fileChecksum.slice(0, 12)}); add a new migration instead`
  }
}

const safeText = (v: unknown): string => {
  try {
    return String(v)
  } catch {
    return Object.prototype.toString.call(v)
  }
}

/** A migration's SQL failed; its transaction was rolled back, so nothing of it remains. */
export class MigrationFailed extends Data.TaggedError("MigrationFailed")<{
  readonly file: string
  readonly cause: unknown
}> {
  override get message() {
    const m = (this.cause as { message?: unknown } | null)?.message
    const cause = typeof m === "string" ? m : safeText(this.cause)
    return `migration ${this.file} failed and was rolled back: ${cause}`
  }
}

export type MigrationError = MigrationFileInvalid | MigrationChanged | MigrationFailed
