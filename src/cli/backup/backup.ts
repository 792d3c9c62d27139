import { createHash } from "node:crypto"
import { mkdir, open, readdir, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { Data, Effect, Either } from "effect"
import type { SqlClient } from "../../db/sql.js"
import { decodeFields } from "../../events/codec.js"
import type { LogUnavailable } from "../../events/errors.js"
import type { EventLogService } from "../../events/eventLog.js"
import type { EventEnvelope } from "../../events/schema/envelope.js"
import { ACCESS_FILE, BACKUP_FORMAT, BACKUP_FORMAT_VERSION, eventsFileName, FLEET_FILE, MANIFEST_FILE } from "./format.pure.js"
import type { AccessRow, Manifest, ManifestFile } from "./format.pure.js"

/** The backup could not be written (or read, for restore): which file, and why. */
export class BackupFailed extends Data.TaggedError("BackupFailed")<{ readonly file: string; readonly reason: string }> {
  override get message() {
    return `${this.file}: ${this.reason}`
  }
}

export const SECRETS_NOTE =
  "bot tokens are in the events as ciphertext only; the backup does not contain BOTFLEET_SECRET_KEY: keep the key apart, a restore needs the same key to use the tokens. " +
  "REST API tokens are kept as their SHA-256 hashes only (as the database keeps them): they work again after a restore, and nobody can read a token out of the backup"

export interface BackupOptions {
  readonly log: EventLogService
  readonly sql: SqlClient
  readonly dir: string
  readonly now: () => Date
  readonly onProgress?: (done: number, total: number) => void
  readonly pageSize?: number
}

interface ArchiveRow {
  bot_id: string; version: number; event_id: string; type: string; schema_version: number; occurred_at: string
  correlation_id: string; causation_id: string | null; actor: string; data: string
}

// occurred_at back as ISO-8601 exactly as stored (microseconds kept), as rebuild.ts reads it
const iso = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`

/** The REST API's owners, then its tokens (hashes, scopes, expiry, revocation), as the access file's lines. */
const readAccess = async (sql: SqlClient): Promise<Array<AccessRow>> => {
  const owners = await sql.query<{ owner_id: string; name: string | null; created_at: string }>(
    `SELECT owner_id, name, ${iso("created_at")} AS created_at FROM api_owners ORDER BY owner_id`
  )
  const tokens = await sql.query<{
    token_id: string; owner_id: string | null; scope: "read" | "write" | "admin"; secret_hash: string; label: string | null
    created_at: string; expires_at: string | null; revoked_at: string | null; last_used_at: string | null
  }>(
    `SELECT token_id, owner_id, scope, secret_hash, label, ${iso("created_at")} AS created_at, ${iso("expires_at")} AS expires_at,
            ${iso("revoked_at")} AS revoked_at, ${iso("last_used_at")} AS last_used_at
       FROM api_tokens ORDER BY token_id`
  )
  return [
    ...owners.rows.map((o): AccessRow => ({ type: "owner", ownerId: o.owner_id, name: o.name, createdAt: o.created_at })),
    ...tokens.rows.map((t): AccessRow => ({
      type: "token", tokenId: t.token_id, ownerId: t.owner_id, scope: t.scope, secretHash: t.secret_hash, label: t.label,
      createdAt: t.created_at, expiresAt: t.expires_at, revokedAt: t.revoked_at, lastUsedAt: t.last_used_at
    }))
  ]
}

const ARCHIVE_COLUMNS = `bot_id, version, event_id, type, schema_version,
  to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred_at,
  correlation_id, causation_id, actor, data::text AS data`

/** The envelope as backed up: no adapter-specific position or partition. */
const line = (e: EventEnvelope): string =>
  JSON.stringify({
    eventId: e.eventId, botId: e.botId, version: e.version, type: e.type, schemaVersion: e.schemaVersion, occurredAt: e.occurredAt,
    correlationId: e.correlationId, causationId: e.causationId, actor: e.actor, data: e.data
  })

/** A file written with its sha-256 and line count computed as it goes. */
const hashedFile = async (dir: string, file: string) => {
  const handle = await open(join(dir, file), "wx")
  const hash = createHash("sha256")
  let bytes = 0
  let count = 0
  return {
    write: async (lines: ReadonlyArray<string>) => {
      if (lines.length === 0) return
      const text = lines.join("\n") + "\n"
      const buf = Buffer.from(text, "utf8")
      hash.update(buf)
      bytes += buf.length
      count += lines.length
      await handle.write(buf)
    },
    close: async (): Promise<{ count: number; bytes: number; sha256: string }> => {
      await handle.sync()
      await handle.close()
      return { count, bytes, sha256: hash.digest("hex") }
    },
    abort: () => handle.close().catch(() => undefined)
  }
}

/**
 * Writes a backup of the whole event log into `dir` (created; it must be empty or absent): for
 * each partition, the events of the Redis tail and of the Postgres events archive, each (bot,
 * version) once, then the fleet directory, then the REST API's owners and tokens (hashes only),
 * then manifest.json with counts and sha-256 of every file. The tail is read before the archive: an event trimmed from the tail in between had been
 * archived first, so nothing falls between the two reads. manifest.json is written last, so an
 * interrupted backup has none and restore refuses it. Snapshots, inboxes and offsets are not
 * backed up: state is rebuilt from the events.
 */
export const writeBackup = (opts: BackupOptions): Effect.Effect<Manifest, BackupFailed | LogUnavailable> =>
  Effect.gen(function* () {
    const { log, sql, dir } = opts
    const startedAt = opts.now().toISOString()
    const pageSize = opts.pageSize ?? 5000
    const io = <A>(file: string, what: string, f: () => Promise<A>) =>
      Effect.tryPromise({ try: f, catch: (e) => new BackupFailed({ file, reason: `${what}: ${e instanceof Error ? e.message : String(e)}` }) })

    yield* io(dir, "cannot create the folder", () => mkdir(dir, { recursive: true }))
    const existing = yield* io(dir, "cannot read the folder", () => readdir(dir))
    if (existing.length > 0) return yield* new BackupFailed({ file: dir, reason: "the folder is not empty: back up into a new or empty folder" })

    // events archived under a partition this log does not have would be left out: refuse up front.
    // (Counting the whole archive against what was read would not do: a running fleet archives more meanwhile.)
    const outside = Number(
      (yield* io("events_archive", "cannot count the archive", () =>
        sql.query<{ n: string }>("SELECT count(*) AS n FROM events_archive WHERE log_partition < 0 OR log_partition >= $1", [log.partitions])
      )).rows[0]!.n
    )
    if (outside > 0) {
      return yield* new BackupFailed({
        file: "events_archive",
        reason: `the archive holds ${outside} events of partitions beyond the log's ${log.partitions}: set PARTITIONS to the value the fleet runs with`
      })
    }
    const files: Array<ManifestFile> = []
    const bots = new Set<string>()
    let undecodable = 0
    opts.onProgress?.(0, log.partitions)

    for (let p = 0; p < log.partitions; p++) {
      const file = eventsFileName(p)
      const out = yield* io(file, "cannot create the file", () => hashedFile(dir, file))
      const written = yield* Effect.gen(function* () {
        const seen = new Set<string>()
        // 1. the hot tail, in log order
        let after: string | undefined
        for (;;) {
          const page = yield* log.readPartition(p, after === undefined ? { limit: pageSize } : { after, limit: pageSize })
          const lines: Array<string> = []
          for (const d of page) {
            if (Either.isLeft(d.event)) {
              undecodable++
              continue
            }
            // as stored, not as read: personal fields stay sealed in the backup (docs/privacy.md),
            // whatever opening the log does for its readers
            const stored = decodeFields(d.raw)
            const e = Either.isRight(stored) ? stored.right : d.event.right
            seen.add(`${e.botId}\u0000${e.version}`)
            bots.add(e.botId)
            lines.push(line(e))
          }
          yield* io(file, "cannot write", () => out.write(lines))
          if (page.length < pageSize) break
          after = page[page.length - 1]!.position
        }
        // 2. the archive, skipping what the tail had
        let from: [string, number] | null = null
        for (;;) {
          const rows: ReadonlyArray<ArchiveRow> = (
            yield* io("events_archive", "cannot read the archive", () =>
              sql.query<ArchiveRow & Record<string, unknown>>(
                `SELECT ${ARCHIVE_COLUMNS} FROM events_archive WHERE log_partition = $1 ${from ? "AND (bot_id, version) > ($3, $4)" : ""}
                 ORDER BY bot_id, version LIMIT $2`,
                from ? [p, pageSize, from[0], from[1]] : [p, pageSize]
              )
            )
          ).rows
          const lines: Array<string> = []
          for (const r of rows) {
            if (seen.has(`${r.bot_id}\u0000${r.version}`)) continue
            const decoded = decodeFields({
              eventId: r.event_id, botId: r.bot_id, v: String(r.version), type: r.type, schemaVersion: String(r.schema_version),
              occurredAt: r.occurred_at, correlationId: r.correlation_id, causationId: r.causation_id ?? "", actor: r.actor, data: r.data
            })
            if (Either.isLeft(decoded)) {
              undecodable++
              continue
            }
            bots.add(r.bot_id)
            lines.push(line(decoded.right))
          }
          yield* io(file, "cannot write", () => out.write(lines))
          if (rows.length < pageSize) break
          const last = rows[rows.length - 1]!
          from = [last.bot_id, last.version]
        }
        return yield* io(file, "cannot finish", () => out.close())
      }).pipe(Effect.tapError(() => Effect.promise(() => out.abort())))
      files.push({ file, kind: "events", partition: p, ...written })
      opts.onProgress?.(p + 1, log.partitions)
    }

    const fleet = yield* io(FLEET_FILE, "cannot create the file", () => hashedFile(dir, FLEET_FILE))
    const fleetRows = (
      yield* io("fleet_bots", "cannot read the fleet directory", () =>
        sql.query<{ bot_id: string; added_at: string }>(
          `SELECT bot_id, to_char(added_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS added_at FROM fleet_bots ORDER BY bot_id`
        )
      )
    ).rows
    yield* io(FLEET_FILE, "cannot write", () => fleet.write(fleetRows.map((r) => JSON.stringify({ botId: r.bot_id, addedAt: r.added_at }))))
    files.push({ file: FLEET_FILE, kind: "fleet", ...(yield* io(FLEET_FILE, "cannot finish", () => fleet.close())) })

    // who may use the REST API: a restore gives back a working ops surface, not only the bots
    const access = yield* io(ACCESS_FILE, "cannot create the file", () => hashedFile(dir, ACCESS_FILE))
    const accessRows = yield* io("api_tokens", "cannot read the API owners and tokens", () => readAccess(sql))
    yield* io(ACCESS_FILE, "cannot write", () => access.write(accessRows.map((r) => JSON.stringify(r))))
    files.push({ file: ACCESS_FILE, kind: "access", ...(yield* io(ACCESS_FILE, "cannot finish", () => access.close())) })

    const manifest: Manifest = {
      format: BACKUP_FORMAT,
      formatVersion: BACKUP_FORMAT_VERSION,
      createdAt: opts.now().toISOString(),
      startedAt,
      partitions: log.partitions,
      bots: bots.size,
      events: files.filter((f) => f.kind === "events").reduce((n, f) => n + f.count, 0),
      undecodable,
      secrets: SECRETS_NOTE,
      files
    }
    yield* io(MANIFEST_FILE, "cannot write", () => writeFile(join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + "\n", { flag: "wx" }))
    return manifest
  })
