import { Either } from "effect"
import { encodeNewEvent } from "../../events/codec.js"
import { BOT_ID_PATTERN } from "../../events/partition.js"
import type { NewEvent } from "../../events/schema/envelope.js"

/*
 * The backup folder's format (docs/cli.md, "Backup and restore"): one ndjson file of event
 * envelopes per partition of the source log, one ndjson file of fleet directory rows, one of
 * REST API owners and tokens (hashed: the secret is never stored anywhere), and manifest.json (written last) with the count and sha-256 of every file. Pure: parsing and
 * validation only, so restore can check everything before it writes anything.
 */

export const BACKUP_FORMAT = "botfleet-backup"
export const BACKUP_FORMAT_VERSION = 1
export const MANIFEST_FILE = "manifest.json"
export const FLEET_FILE = "fleet_bots.ndjson"
/** REST API access: owners, then tokens (sql/0055). Absent from backups written before it was kept. */
export const ACCESS_FILE = "api_access.ndjson"

export const eventsFileName = (partition: number): string => `events-p${String(partition).padStart(2, "0")}.ndjson`

export interface ManifestFile {
  readonly file: string
  readonly kind: "events" | "fleet" | "access"
  /** Source log partition (events files only). */
  readonly partition?: number
  /** Lines (events or fleet rows) in the file. */
  readonly count: number
  readonly bytes: number
  readonly sha256: string
}

export interface Manifest {
  readonly format: typeof BACKUP_FORMAT
  readonly formatVersion: number
  readonly createdAt: string
  /** When the backup began reading the log (absent in backups written before it was recorded). */
  readonly startedAt?: string
  /** Partitions of the source log. */
  readonly partitions: number
  readonly bots: number
  readonly events: number
  /** Entries that no longer decode and were left out (their bots cannot be restored whole). */
  readonly undecodable: number
  readonly secrets: string
  readonly files: ReadonlyArray<ManifestFile>
}

/** One fleet directory row as backed up. */
export interface FleetRow {
  readonly botId: string
  readonly addedAt: string
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)
const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0
const SAFE_FILE = /^[A-Za-z0-9_.-]+$/

/** Parses manifest.json; Left is the reason it cannot be trusted. */
export const parseManifest = (text: string): Either.Either<Manifest, string> => {
  let m: unknown
  try {
    m = JSON.parse(text)
  } catch (e) {
    return Either.left(`not JSON: ${(e as Error).message}`)
  }
  if (!isRecord(m) || m["format"] !== BACKUP_FORMAT) return Either.left(`not a botfleet backup manifest (format must be "${BACKUP_FORMAT}")`)
  if (m["formatVersion"] !== BACKUP_FORMAT_VERSION) {
    return Either.left(`format version ${JSON.stringify(m["formatVersion"])} is not supported (this botfleet reads version ${BACKUP_FORMAT_VERSION})`)
  }
  if (!isCount(m["partitions"]) || !isCount(m["events"]) || !isCount(m["bots"]) || !isCount(m["undecodable"]) || typeof m["createdAt"] !== "string") {
    return Either.left("partitions, bots, events, undecodable and createdAt are required")
  }
  if (!Array.isArray(m["files"])) return Either.left("files must be a list")
  const files: Array<ManifestFile> = []
  for (const f of m["files"] as Array<unknown>) {
    if (!isRecord(f) || typeof f["file"] !== "string" || !SAFE_FILE.test(f["file"]) || (f["kind"] !== "events" && f["kind"] !== "fleet" && f["kind"] !== "access")) {
      return Either.left(`a file entry is malformed: ${JSON.stringify(f)}`)
    }
    if (!isCount(f["count"]) || !isCount(f["bytes"]) || typeof f["sha256"] !== "string" || !/^[0-9a-f]{64}$/.test(f["sha256"])) {
      return Either.left(`file entry ${f["file"]}: count, bytes and sha256 are required`)
    }
    files.push({
      file: f["file"],
      kind: f["kind"],
      ...(isCount(f["partition"]) ? { partition: f["partition"] } : {}),
      count: f["count"],
      bytes: f["bytes"],
      sha256: f["sha256"]
    })
  }
  if (new Set(files.map((f) => f.file)).size !== files.length) return Either.left("a file is listed twice")
  const total = files.filter((f) => f.kind === "events").reduce((n, f) => n + f.count, 0)
  if (total !== m["events"]) return Either.left(`the files hold ${total} events, the manifest says ${m["events"]}`)
  return Either.right({ ...(m as unknown as Manifest), files })
}

/** An event of a backup, ready to append: its bot, its version, and the event as the log takes it. */
export interface BackupEvent {
  readonly botId: string
  readonly version: number
  readonly event: NewEvent
}

/** Parses and validates one events line (an exported envelope); Left is the reason. */
export const parseEventLine = (line: string): Either.Either<BackupEvent, string> => {
  let e: unknown
  try {
    e = JSON.parse(line)
  } catch (err) {
    return Either.left(`not a JSON line: ${(err as Error).message}`)
  }
  if (!isRecord(e) || !isRecord(e["data"]) || typeof e["type"] !== "string" || typeof e["botId"] !== "string") {
    return Either.left("expected an event envelope ({eventId, botId, version, type, data, ...})")
  }
  const botId = e["botId"]
  if (!BOT_ID_PATTERN.test(botId)) return Either.left(`bot id ${JSON.stringify(botId)} is not valid`)
  const version = e["version"]
  if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 1) return Either.left(`version ${JSON.stringify(version)} is not a stream version`)
  if (typeof e["eventId"] !== "string" || e["eventId"] === "") return Either.left("eventId is required")
  const event: NewEvent = {
    data: { ...e["data"], _tag: e["type"] } as NewEvent["data"],
    eventId: e["eventId"],
    occurredAt: String(e["occurredAt"]),
    correlationId: String(e["correlationId"]),
    causationId: typeof e["causationId"] === "string" ? e["causationId"] : null,
    actor: String(e["actor"])
  }
  // the same check an append makes: a backup that would be refused half-way is refused up front
  const checked = encodeNewEvent(botId, event, () => "unused")
  if (Either.isLeft(checked)) return Either.left(checked.left.message)
  return Either.right({ botId, version, event })
}

/** Parses one fleet directory line; Left is the reason. */
export const parseFleetLine = (line: string): Either.Either<FleetRow, string> => {
  let r: unknown
  try {
    r = JSON.parse(line)
  } catch (err) {
    return Either.left(`not a JSON line: ${(err as Error).message}`)
  }
  if (!isRecord(r) || typeof r["botId"] !== "string" || !BOT_ID_PATTERN.test(r["botId"]) || typeof r["addedAt"] !== "string") {
    return Either.left("expected a fleet row ({botId, addedAt})")
  }
  return Either.right({ botId: r["botId"], addedAt: r["addedAt"] })
}

/** One line of the access file: an owner who may hold API tokens, or a token (its hash, never its secret). */
export type AccessRow =
  | { readonly type: "owner"; readonly ownerId: string; readonly name: string | null; readonly createdAt: string }
  | {
      readonly type: "token"
      readonly tokenId: string
      readonly ownerId: string | null
      readonly scope: "read" | "write" | "admin"
      readonly secretHash: string
      readonly label: string | null
      readonly createdAt: string
      readonly expiresAt: string | null
      readonly revokedAt: string | null
      readonly lastUsedAt: string | null
    }

const OWNER_ID = /^[A-Za-z0-9_.@-]{1,64}$/
/** An ISO-8601 time with its zone, as the backup writes them (Postgres takes it back as timestamptz). */
const ISO_TIME = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?(Z|[+-]\d{2}:?\d{2})$/
const isTime = (v: unknown): v is string => typeof v === "string" && ISO_TIME.test(v)
const isTimeOrNull = (v: unknown): v is string | null => v === null || isTime(v)
const isTextOrNull = (v: unknown): v is string | null => v === null || typeof v === "string"

/** Parses one access line; Left is the reason (checked as the tables would: a bad row is refused before anything is written). */
export const parseAccessLine = (line: string): Either.Either<AccessRow, string> => {
  let r: unknown
  try {
    r = JSON.parse(line)
  } catch (err) {
    return Either.left(`not a JSON line: ${(err as Error).message}`)
  }
  if (!isRecord(r)) return Either.left("expected an owner or a token row")
  if (r["type"] === "owner") {
    if (typeof r["ownerId"] !== "string" || !OWNER_ID.test(r["ownerId"]) || !isTextOrNull(r["name"]) || !isTime(r["createdAt"])) {
      return Either.left("expected an owner row ({type: owner, ownerId, name, createdAt})")
    }
    return Either.right({ type: "owner", ownerId: r["ownerId"], name: r["name"], createdAt: r["createdAt"] })
  }
  if (r["type"] === "token") {
    const scope = r["scope"]
    const ownerId = r["ownerId"]
    if (
      typeof r["tokenId"] !== "string" || !/^[0-9a-f]{16}$/.test(r["tokenId"]) ||
      (scope !== "read" && scope !== "write" && scope !== "admin") ||
      !(ownerId === null || (typeof ownerId === "string" && OWNER_ID.test(ownerId))) || (scope === "admin") !== (ownerId === null) ||
      typeof r["secretHash"] !== "string" || !/^sha256:[0-9a-f]{64}$/.test(r["secretHash"]) ||
      !isTextOrNull(r["label"]) || !isTime(r["createdAt"]) || !isTimeOrNull(r["expiresAt"]) || !isTimeOrNull(r["revokedAt"]) || !isTimeOrNull(r["lastUsedAt"])
    ) {
      return Either.left("expected a token row ({type: token, tokenId, ownerId (null for admin), scope, secretHash, label, createdAt, expiresAt, revokedAt, lastUsedAt})")
    }
    return Either.right({
      type: "token", tokenId: r["tokenId"], ownerId, scope, secretHash: r["secretHash"], label: r["label"],
      createdAt: r["createdAt"], expiresAt: r["expiresAt"], revokedAt: r["revokedAt"], lastUsedAt: r["lastUsedAt"]
    })
  }
  return Either.left(`unknown row type ${JSON.stringify(r["type"])} (expected owner or token)`)
}

/** Tokens naming an owner the file does not hold (the table refers to its owner): the problems. */
export const accessProblems = (rows: ReadonlyArray<AccessRow>): ReadonlyArray<string> => {
  const owners = new Set(rows.flatMap((r) => (r.type === "owner" ? [r.ownerId] : [])))
  return rows.flatMap((r) => (r.type === "token" && r.ownerId !== null && !owners.has(r.ownerId) ? [`token ${r.tokenId} belongs to owner ${r.ownerId}, who is not in the file`] : []))
}

/**
 * Checks that every bot's versions run 1, 2, 3... with no gap or repeat (the log assigns versions
 * in order, so only whole streams can be appended back with their versions). Returns the problems.
 */
export const streamGaps = (versions: ReadonlyMap<string, ReadonlyArray<number>>): ReadonlyArray<string> => {
  const problems: Array<string> = []
  for (const [botId, vs] of versions) {
    const sorted = [...vs].sort((a, b) => a - b)
    for (let i = 0; i < sorted.length; i++) {
      if (sorted[i] !== i + 1) {
        problems.push(`bot ${botId}: expected version ${i + 1}, found ${sorted[i]} (the stream is not whole)`)
        break
      }
    }
  }
  return problems
}
