import { DEFAULT_MIGRATIONS_DIR } from "../db/migrator.js"
import { readMigrationFiles } from "../db/migrationFiles.js"
import type { MigrationFile } from "../db/migrationFiles.js"
import type { SqlClient } from "../db/sql.js"
import { redactString } from "../logging.js"

/*
 * Whether a node should be sent traffic (`GET /ready`): its stores answer, its database has every
 * migration of this build, and its supervisor runs (not starting, not draining). All checks of a
 * node live here, so they can later be fed from a shared record of the dependencies' health
 * instead of probing themselves.
 */

/** The node's life: `starting` until its bots are started, `draining` once a stop began. */
export type NodePhase = "starting" | "running" | "draining"

export interface ReadinessCheck {
  readonly name: "database" | "redis" | "migrations" | "supervisor"
  readonly ok: boolean
  /** What was found; for a failed check, why (never a secret: URL credentials and tokens are redacted). */
  readonly detail: string
}

export interface ReadinessReport {
  readonly ready: boolean
  /** The failed checks, `name: detail` joined with "; " (null when ready). */
  readonly reason: string | null
  readonly checks: ReadonlyArray<ReadinessCheck>
}

export interface Readiness {
  readonly phase: () => NodePhase
  readonly setPhase: (phase: NodePhase) => void
  /** Runs every check (concurrently, each within its deadline). Never rejects. */
  readonly check: () => Promise<ReadinessReport>
}

export interface ReadinessOptions {
  /** The node's database (the projections; in embedded mode also the log). */
  readonly sql: SqlClient
  /** Production mode's Redis (the log, inboxes, snapshots); null in embedded mode. */
  readonly redis: { readonly ping: () => Promise<unknown> } | null
  /** The migrations this build expects (default: the repository's `sql/`). */
  readonly migrationsDir?: string
  /** Deadline of each check (default 5 s: PGlite shares its one connection with the bots). */
  readonly timeoutMs?: number
}

const describe = (e: unknown) => redactString(e instanceof Error ? e.message : String(e))

const within = <A>(ms: number, p: Promise<A>): Promise<A> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}

/** What the database is missing of `files`: versions not applied, and applied ones whose file changed. */
export const migrationProblems = (
  files: ReadonlyArray<MigrationFile>,
  applied: ReadonlyArray<{ readonly version: number; readonly checksum: string }>
): ReadonlyArray<string> => {
  const byVersion = new Map(applied.map((a) => [Number(a.version), a.checksum]))
  const problems: string[] = []
  for (const f of files) {
    const checksum = byVersion.get(f.version)
    if (checksum === undefined) problems.push(`${f.file} not applied`)
    else if (checksum !== f.checksum) problems.push(`${f.file} changed since it was applied`)
  }
  return problems
}

export const makeReadiness = (o: ReadinessOptions): Readiness => {
  let phase: NodePhase = "starting"
  const timeoutMs = o.timeoutMs ?? 5_000
  let files: Promise<ReadonlyArray<MigrationFile>> | null = null
  const migrationFiles = () => {
    files ??= readMigrationFiles(o.migrationsDir ?? DEFAULT_MIGRATIONS_DIR).catch((e: unknown) => {
      files = null
      throw e
    })
    return files
  }

  const probe = async (name: ReadinessCheck["name"], run: () => Promise<string>): Promise<ReadinessCheck> => {
    try {
      return { name, ok: true, detail: await within(timeoutMs, run()) }
    } catch (e) {
      return { name, ok: false, detail: describe(e) }
    }
  }

  const checkMigrations = async () => {
    const expected = await migrationFiles()
    const { rows } = await o.sql.query<{ version: number; checksum: string }>("SELECT version, checksum FROM schema_migrations")
    const problems = migrationProblems(expected, rows)
    if (problems.length > 0) throw new Error(`${problems.length} migration${problems.length === 1 ? "" : "s"} missing: ${problems.join(", ")}`)
    return `${expected.length} applied`
  }

  const supervisorCheck = (): ReadinessCheck => {
    switch (phase) {
      case "running":
        return { name: "supervisor", ok: true, detail: "running" }
      case "starting":
        return { name: "supervisor", ok: false, detail: "the node is starting" }
      case "draining":
        return { name: "supervisor", ok: false, detail: "the node is stopping: its bots are draining" }
    }
  }

  return {
    phase: () => phase,
    setPhase: (p) => {
      phase = p
    },
    check: async () => {
      const redis = o.redis
      const stores = await Promise.all([
        probe("database", async () => {
          await o.sql.query("SELECT 1")
          return `${o.sql.dialect} answers`
        }),
        ...(redis
          ? [
              probe("redis", async () => {
                await redis.ping()
                return "answers"
              })
            ]
          : [])
      ])
      const migrations: ReadinessCheck = stores[0]!.ok
        ? await probe("migrations", checkMigrations)
        : { name: "migrations", ok: false, detail: "not checked: the database does not answer" }
      const checks = [...stores, migrations, supervisorCheck()]
      const failed = checks.filter((c) => !c.ok)
      return { ready: failed.length === 0, reason: failed.length === 0 ? null : failed.map((c) => `${c.name}: ${c.detail}`).join("; "), checks }
    }
  }
}
