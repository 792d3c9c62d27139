import { createHash } from "node:crypto"
import { readdir, readFile } from "node:fs/promises"
import { join } from "node:path"
import { MigrationFileInvalid } from "./migrationErrors.js"

/** One migration file: `NNNN_snake_case.sql`. */
export interface MigrationFile {
  readonly version: number
  readonly name: string
  readonly file: string
  readonly script: string
  /** sha256 of the file's bytes, hex. */
  readonly checksum: string
}

const FILE_PATTERN = /^(\d{4})_([a-z0-9_]+)\.sql$/

export const checksumOf = (script: string): string => createHash("sha256").update(script, "utf8").digest("hex")

/**
 * The migrations in `dir`, ordered by number. Every `.sql` file must be named `NNNN_snake_case.sql`
 * and numbers must be unique: a misnamed or duplicate file is refused rather than silently skipped,
 * since skipping it would leave the schema short of what its author meant.
 */
export const readMigrationFiles = async (dir: string): Promise<ReadonlyArray<MigrationFile>> => {
  const entries = (await readdir(dir)).filter((f) => f.endsWith(".sql")).sort()
  const out: MigrationFile[] = []
  for (const file of entries) {
    const m = FILE_PATTERN.exec(file)
    if (!m) throw new MigrationFileInvalid({ file, detail: "a migration must be named NNNN_snake_case.sql" })
    const version = Number(m[1])
    const clash = out.find((o) => o.version === version)
    if (clash) throw new MigrationFileInvalid({ file, detail: `number ${m[1]} is also used by ${clash.file}` })
    const script = await readFile(join(dir, file), "utf8")
    out.push({ version, name: m[2]!, file, script, checksum: checksumOf(script) })
  }
  return out
}
