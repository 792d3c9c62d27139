import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { MigrationChanged, MigrationFailed } from "./migrationErrors.js"
import type { MigrationError } from "./migrationErrors.js"
import { readMigrationFiles } from "./migrationFiles.js"
import type { MigrationFile } from "./migrationFiles.js"
import type { SqlClient, SqlTx } from "./sql.js"

export interface AppliedMigration {
  readonly version: number
  readonly name: string
  readonly file: string
  readonly checksum: string
}

/** The repository's `sql/` folder, wherever the process was started from. */
export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL("../../sql/", import.meta.url))

/** Key of the transaction-scoped advisory lock that serialises migration runners ("bf" + 1). */
const MIGRATION_LOCK_KEY = 0x62660001

const ensureTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`

/**
 * Applies one pending migration, or none if all are applied, in one transaction:
 * lock, check every applied checksum, run the first pending file, record it.
 * The lock is taken first, so a concurrent runner waits here and then sees this one's record:
 * no migration runs twice, and the table is created by one runner only.
 */
const applyNext = async (tx: SqlTx, files: ReadonlyArray<MigrationFile>): Promise<AppliedMigration | null> => {
  await tx.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK_KEY])
  await tx.query(ensureTable)
  const { rows } = await tx.query<{ version: number; checksum: string }>("SELECT version, checksum FROM schema_migrations")
  const applied = new Map(rows.map((r) => [r.version, r.checksum]))
  for (const f of files) {
    const checksum = applied.get(f.version)
    if (checksum !== undefined && checksum !== f.checksum) {
      throw new MigrationChanged({ file: f.file, appliedChecksum: checksum, fileChecksum: f.checksum })
    }
  }
  const next = files.find((f) => !applied.has(f.version))
  if (!next) return null
  try {
    await tx.exec(next.script)
  } catch (cause) {
    throw new MigrationFailed({ file: next.file, cause })
  }
  await tx.query("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", [
    next.version,
    next.name,
    next.checksum
  ])
  return { version: next.version, name: next.name, file: next.file, checksum: next.checksum }
}

/**
 * Brings the database up to the migrations in `dir` (`NNNN_snake_case.sql`, applied in number order).
 * Guarantees: each file is applied at most once, in its own transaction (a failing one leaves nothing
 * behind and stops the run with MigrationFailed); an applied file whose sha256 changed is refused with
 * MigrationChanged naming it, before anything else is applied; concurrent runners (several nodes
 * starting at once) are serialised by a transaction-scoped advisory lock, so each migration is
 * applied by exactly one of them. Applied migrations with no file left are tolerated.
 * Resolves with what this call applied (empty when up to date); rejects with a MigrationError.
 */
export const migrate = async (sql: SqlClient, dir: string = DEFAULT_MIGRATIONS_DIR): Promise<ReadonlyArray<AppliedMigration>> => {
  const files = await readMigrationFiles(dir)
  const done: AppliedMigration[] = []
  for (;;) {
    const applied = await sql.transaction((tx) => applyNext(tx, files))
    if (!applied) return done
    done.push(applied)
  }
}

const isMigrationError = (e: unknown): e is MigrationError =>
  typeof e === "object" && e !== null && "_tag" in e &&
  (e._tag === "MigrationChanged" || e._tag === "MigrationFailed" || e._tag === "MigrationFileInvalid")

/** `migrate` as an Effect; other failures (unreachable database, unreadable folder) are defects. */
export const migrateEffect = (sql: SqlClient, dir?: string): Effect.Effect<ReadonlyArray<AppliedMigration>, MigrationError> =>
  Effect.tryPromise({ try: () => migrate(sql, dir), catch: (e) => e }).pipe(
    Effect.catchAll((e) => (isMigrationError(e) ? Effect.fail(e) : Effect.die(e)))
  )
