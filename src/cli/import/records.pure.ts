import { canonicalJson } from "./json.pure.js"

/*
 * What the legacy import reads: records, each tied to its file and JSON path, and precise problems.
 */

/** A hash of a text, as hex (sha-256 in production). Passed in so parsing stays pure. */
export type Hasher = (text: string) => string

/** The legacy layouts the import understands. */
export type LegacyFormat = "telegraf-session-local" | "generic"

/** One record of a legacy file, as it will be recorded in a LegacyRecordImported event. */
export interface LegacyRecord {
  /** `sessions`, `users`, `chats`, `messages`, `settings`, or `data.<name>` for a bot's own collection. */
  readonly collection: string
  /** Unique within the collection (session id, user id, `<chat>:<message>`, setting name, array index). */
  readonly key: string
  /** The record exactly as the file holds it. */
  readonly record: unknown
  /** `<file>#<JSON path>`. */
  readonly source: string
  /** Hash of the record's canonical JSON. */
  readonly checksum: string
}

/** Why a file cannot be imported: file, JSON path (or line/column) and reason, for a person to fix it. */
export interface ImportProblem {
  readonly file: string
  readonly path: string
  readonly reason: string
}

export const formatProblem = (p: ImportProblem): string => `${p.file}: ${p.path}: ${p.reason}`

/** What a file holds, once validated. */
export interface ParsedFile {
  readonly file: string
  readonly format: LegacyFormat
  readonly records: ReadonlyArray<LegacyRecord>
  /** Facts worth reporting (session kinds, sessions inside a scene...). */
  readonly notes: Readonly<Record<string, number>>
}

/**
 * A record's checksum: the hash of its collection, key and canonical JSON. It identifies the record
 * AND its content, so the same record always gets the same checksum (and import id).
 */
export const recordChecksum = (collection: string, key: string, value: unknown, hash: Hasher): string =>
  hash(`${collection}\u0000${key}\u0000${canonicalJson(value)}`)

/** Stops collecting problems in one file past this many: the first ones are enough to fix it. */
export const MAX_PROBLEMS_PER_FILE = 20
