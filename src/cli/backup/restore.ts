import { unsealedLog } from "../../privacy/sealingLog.js"
import { createHash } from "node:crypto"
import { readFile } from "node:fs/promises"
import { join } from "node:path"
import { Effect, Either } from "effect"
import type { SqlClient } from "../../db/sql.js"
import type { AppendError, LogUnavailable } from "../../events/errors.js"
import type { EventLogService } from "../../events/eventLog.js"
import type { ProjectionFailed } from "../../projections/errors.js"
import { makeProjector } from "../../projections/projector.js"
import { BotBusy } from "../import/errors.js"
import { BackupFailed } from "./backup.js"
import { accessProblems, MANIFEST_FILE, parseAccessLine, parseEventLine, parseFleetLine, parseManifest, streamGaps } from "./format.pure.js"
import type { AccessRow, BackupEvent, FleetRow, Manifest } from "./format.pure.js"

export interface RestoreOptions {
  readonly log: EventLogService
  readonly sql: SqlClient
  readonly dir: string
  /** Lease owner name while appending. */
  readonly nodeId: string
  readonly onProgress?: (phase: "verify" | "append" | "project", done: number, total: number) => void
  /** Events per append (default 2000). */
  readonly chunk?: number
}

export interface RestoreReport {
  readonly createdAt: string
  readonly bots: number
  readonly events: number
  readonly fleetBots: number
  /** REST API owners and tokens restored (0 from a backup written before they were kept). */
  readonly apiOwners: number
  readonly apiTokens: number
  /** Log entries the projectors projected after the append. */
  readonly projected: number
  /** Entries the projections refused (dead-lettered with their reason; see botfleet dlq list). */
  readonly deadLettered: number
}

const LEASE_MS = 120_000

const verifyFiles = (dir: string, manifest: Manifest, onProgress: RestoreOptions["onProgress"]) =>
  Effect.gen(function* () {
    const events: Array<BackupEvent> = []
    const fleet: Array<FleetRow> = []
    const access: Array<AccessRow> = []
    for (const [i, f] of manifest.files.entries()) {
      const buf = yield* Effect.tryPromise({
        try: () => readFile(join(dir, f.file)),
        catch: (e) => new BackupFailed({ file: f.file, reason: `cannot read it (${(e as NodeJS.ErrnoException).code ?? String(e)}): the backup is incomplete` })
      })
      const sha = createHash("sha256").update(buf).digest("hex")
      if (buf.length !== f.bytes || sha !== f.sha256) {
        return yield* new BackupFailed({ file: f.file, reason: `checksum mismatch (sha-256 ${sha}, ${buf.length} bytes; the manifest says ${f.sha256}, ${f.bytes} bytes): the file is damaged` })
      }
      const lines = buf.toString("utf8").split("\n")
      if (lines[lines.length - 1] === "") lines.pop()
      if (lines.length !== f.count) return yield* new BackupFailed({ file: f.file, reason: `holds ${lines.length} lines, the manifest says ${f.count}` })
      for (const [n, text] of lines.entries()) {
        if (f.kind === "events") {
          const e = parseEventLine(text)
          if (Either.isLeft(e)) return yield* new BackupFailed({ file: `${f.file}:${n + 1}`, reason: e.left })
          events.push(e.right)
        } else if (f.kind === "fleet") {
          const r = parseFleetLine(text)
          if (Either.isLeft(r)) return yield* new BackupFailed({ file: `${f.file}:${n + 1}`, reason: r.left })
          fleet.push(r.right)
        } else {
          const r = parseAccessLine(text)
          if (Either.isLeft(r)) return yield* new BackupFailed({ file: `${f.file}:${n + 1}`, reason: r.left })
          access.push(r.right)
        }
      }
      if (f.kind === "access") {
        const problems = accessProblems(access)
        if (problems.length > 0) return yield* new BackupFailed({ file: f.file, reason: problems.join("; ") })
      }
      onProgress?.("verify", i + 1, manifest.files.length)
    }
    return { events, fleet, access }
  })

/** Streams grouped by bot, each in version order; refuses gaps and repeats. */
const groupStreams = (events: ReadonlyArray<BackupEvent>) =>
  Effect.gen(function* () {
    const byBot = new Map<string, Array<BackupEvent>>()
    for (const e of events) {
      const s = byBot.get(e.botId)
      if (s) s.push(e)
      else byBot.set(e.botId, [e])
    }
    for (const s of byBot.values()) s.sort((a, b) => a.version - b.version)
    const gaps = streamGaps(new Map([...byBot].map(([b, s]) => [b, s.map((e) => e.version)])))
    if (gaps.length > 0) return yield* new BackupFailed({ file: "events", reason: gaps.join("; ") })
    return byBot
  })

const sqlStep = <A>(what: string, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (e) => new BackupFailed({ file: what, reason: e instanceof Error ? e.message : String(e) }) })

/** Refuses a target that already holds events, archived events or fleet bots. */
const checkEmpty = (log: EventLogService, sql: SqlClient, bots: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    for (let p = 0; p < log.partitions; p++) {
      if ((yield* log.readPartition(p, { limit: 1 })).length > 0) {
        return yield* new BackupFailed({ file: "target log", reason: `partition ${p} of the target log already holds events: restore into an empty Redis prefix and an empty database` })
      }
    }
    for (const b of bots) {
      const v = yield* log.streamVersion(b)
      if (v > 0) return yield* new BackupFailed({ file: "target log", reason: `bot ${b} already has ${v} events in the target log: restore into an empty Redis prefix and an empty database` })
    }
    const { rows } = yield* sqlStep("target database", () =>
      sql.query<{ archived: string; fleet: string }>("SELECT (SELECT count(*) FROM events_archive) AS archived, (SELECT count(*) FROM fleet_bots) AS fleet")
    )
    if (Number(rows[0]!.archived) > 0 || Number(rows[0]!.fleet) > 0) {
      return yield* new BackupFailed({ file: "target database", reason: "the database already holds archived events or fleet bots: restore into an empty database" })
    }
  })

/**
 * The REST API's owners, then their tokens, as they were: hashes, scopes, expiry, revocation and
 * last use. A row the target already has (an admin token made there to run the restore) is kept
 * as it is. Returns how many of each the target holds from the backup.
 */
const restoreAccess = (sql: SqlClient, rows: ReadonlyArray<AccessRow>) =>
  Effect.gen(function* () {
    const owners = rows.flatMap((r) => (r.type === "owner" ? [r] : []))
    const tokens = rows.flatMap((r) => (r.type === "token" ? [r] : []))
    if (owners.length > 0) {
      yield* sqlStep("api_owners", () =>
        sql.query(
          `INSERT INTO api_owners (owner_id, name, created_at)
           SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[]) ON CONFLICT (owner_id) DO NOTHING`,
          [owners.map((o) => o.ownerId), owners.map((o) => o.name), owners.map((o) => o.createdAt)]
        )
      )
    }
    if (tokens.length > 0) {
      const column = <K extends keyof (typeof tokens)[number]>(k: K) => tokens.map((t) => t[k])
      yield* sqlStep("api_tokens", () =>
        sql.query(
          `INSERT INTO api_tokens (token_id, owner_id, scope, secret_hash, label, created_at, expires_at, revoked_at, last_used_at)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::timestamptz[])
           ON CONFLICT (token_id) DO NOTHING`,
          [column("tokenId"), column("ownerId"), column("scope"), column("secretHash"), column("label"), column("createdAt"), column("expiresAt"), column("revokedAt"), column("lastUsedAt")]
        )
      )
    }
    return { owners: owners.length, tokens: tokens.length }
  })

/** Appends one bot's whole stream under its lease, in chunks, each at the version it must follow. */
const appendStream = (sealingLog: EventLogService, nodeId: string, botId: string, stream: ReadonlyArray<BackupEvent>, chunk: number) =>
  Effect.gen(function* () {
    // as backed up: sealed fields stay sealed, events written in clear before sealing stay in
    // clear, so the archive and the audit chain's event hashes come back the same (docs/privacy.md)
    const log = unsealedLog(sealingLog)
    const lease = yield* log.acquireLease(botId, nodeId, LEASE_MS)
    if (!lease) return yield* new BotBusy({ botId, nodeId: (yield* log.readLease(botId))?.nodeId ?? "another node" })
    yield* Effect.gen(function* () {
      let current = lease
      for (let i = 0; i < stream.length; i += chunk) {
        if (i > 0) {
          const renewed = yield* log.renewLease(current, LEASE_MS)
          if (!renewed) return yield* new BotBusy({ botId, nodeId: (yield* log.readLease(botId))?.nodeId ?? "another node" })
          current = renewed
        }
        // the backup's versions run 1, 2, 3...: appending at i keeps every event at its version
        yield* log.append({ botId, expectedVersion: i, fence: current.fence, events: stream.slice(i, i + chunk).map((e) => e.event) })
      }
    }).pipe(Effect.ensuring(log.releaseLease(lease).pipe(Effect.ignore)))
  })

/**
 * Restores a backup written by `writeBackup` onto an empty log and database. Everything is
 * checked before anything is written: the manifest, every file's size and sha-256, every line's
 * envelope and payload schema, every bot's versions (whole streams). Then each bot's stream is
 * appended under its lease with its versions, event ids, times, correlation and actors; the fleet
 * directory and the REST API's owners and tokens are restored; and the projectors run over the restored log until caught up, which
 * rebuilds every projection and the events archive from the events. Log positions are new (they
 * belong to the target log).
 */
export const restoreBackup = (
  opts: RestoreOptions
): Effect.Effect<RestoreReport, BackupFailed | BotBusy | AppendError | LogUnavailable | ProjectionFailed> =>
  Effect.gen(function* () {
    const { log, sql, dir } = opts
    const text = yield* Effect.tryPromise({
      try: () => readFile(join(dir, MANIFEST_FILE), "utf8"),
      catch: (e) => new BackupFailed({ file: join(dir, MANIFEST_FILE), reason: `cannot read it (${(e as NodeJS.ErrnoException).code ?? String(e)}): is this a finished botfleet backup?` })
    })
    const manifest = parseManifest(text)
    if (Either.isLeft(manifest)) return yield* new BackupFailed({ file: MANIFEST_FILE, reason: manifest.left })
    const { events, fleet, access } = yield* verifyFiles(dir, manifest.right, opts.onProgress)
    const streams = yield* groupStreams(events)
    yield* checkEmpty(log, sql, [...streams.keys()])

    const chunk = opts.chunk ?? 2000
    let appended = 0
    opts.onProgress?.("append", 0, events.length)
    for (const [botId, stream] of streams) {
      yield* appendStream(log, opts.nodeId, botId, stream, chunk)
      appended += stream.length
      opts.onProgress?.("append", appended, events.length)
    }
    if (fleet.length > 0) {
      yield* sqlStep("fleet_bots", () =>
        sql.query(
          "INSERT INTO fleet_bots (bot_id, added_at) SELECT * FROM unnest($1::text[], $2::timestamptz[]) ON CONFLICT (bot_id) DO NOTHING",
          [fleet.map((r) => r.botId), fleet.map((r) => r.addedAt)]
        )
      )
    }

    const { owners, tokens } = yield* restoreAccess(sql, access)

    let projected = 0
    let deadLettered = 0
    for (let p = 0; p < log.partitions; p++) {
      const projector = makeProjector({ log, sql, partition: p, blockMs: 0 })
      for (;;) {
        const r = yield* projector.step
        projected += r.projected
        deadLettered += r.deadLettered
        opts.onProgress?.("project", projected, events.length)
        if (r.caughtUp) break
      }
    }
    return { createdAt: manifest.right.createdAt, bots: streams.size, events: appended, fleetBots: fleet.length, apiOwners: owners, apiTokens: tokens, projected, deadLettered }
  })
