import type { EventOf } from "../../events/schema/catalogue.js"
import type { NewEvent } from "../../events/schema/envelope.js"
import { sameJson } from "./json.pure.js"
import { recordChecksum } from "./records.pure.js"
import type { Hasher, ImportProblem, LegacyRecord, ParsedFile } from "./records.pure.js"

/*
 * The import's decisions, pure: which records are new, changed or already in the log (idempotence),
 * the events to append, and the reconciliation of files against what the log holds afterwards.
 */

const slot = (collection: string, key: string) => `${collection}\u0000${key}`

/**
 * All files' records, one per (collection, key). The same record in two files counts once;
 * two different records under the same key are refused, naming both places.
 */
export const mergeFiles = (
  files: ReadonlyArray<ParsedFile>
): { readonly ok: true; readonly records: ReadonlyArray<LegacyRecord>; readonly repeated: number } | { readonly ok: false; readonly problems: ReadonlyArray<ImportProblem> } => {
  const bySlot = new Map<string, LegacyRecord>()
  const records: Array<LegacyRecord> = []
  const problems: Array<ImportProblem> = []
  let repeated = 0
  for (const f of files) {
    for (const r of f.records) {
      const s = slot(r.collection, r.key)
      const seen = bySlot.get(s)
      if (!seen) {
        bySlot.set(s, r)
        records.push(r)
      } else if (seen.checksum === r.checksum) repeated++
      else if (problems.length < 50) {
        const [file, path] = splitSource(r.source)
        problems.push({ file, path, reason: `a different ${r.collection} record with key ${JSON.stringify(r.key)} is also at ${seen.source}; keep one of them` })
      }
    }
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, records, repeated }
}

const splitSource = (source: string): [string, string] => {
  const i = source.lastIndexOf("#")
  return i < 0 ? [source, "$"] : [source.slice(0, i), source.slice(i + 1)]
}

/** What the log already holds from earlier imports: the latest record per (collection, key). */
export interface ImportedEntry {
  readonly collection: string
  readonly key: string
  /** The checksum recorded in the event. */
  readonly checksum: string
  /** The checksum recomputed from the record as read back (undefined when not verified). */
  readonly actualChecksum: string | undefined
  readonly version: number
}

export type ImportedIndex = ReadonlyMap<string, ImportedEntry>

/** Indexes LegacyRecordImported events; with `hash`, recomputes each record's checksum from what was read. */
export const indexImported = (
  events: Iterable<{ readonly version: number; readonly data: { readonly _tag: string } }>,
  hash?: Hasher
): Map<string, ImportedEntry> => foldImported(new Map(), events, hash ? { hash } : undefined)

/**
 * How each record read back gets its actual checksum: hashed from what was read or, when the
 * files hold a record under the same collection and key whose JSON value is the same, the files'
 * checksum: equal values have equal canonical JSON, hence equal checksums, and comparing the two
 * values costs less than building and hashing the canonical text. A record that differs in any way
 * is hashed, so the report names what the log really holds.
 */
export interface ReadBackCheck {
  readonly hash: Hasher
  readonly fileRecords?: ReadonlyMap<string, LegacyRecord>
}

/** The files' records by (collection, key), for ReadBackCheck. */
export const recordsBySlot = (records: ReadonlyArray<LegacyRecord>): Map<string, LegacyRecord> => {
  const out = new Map<string, LegacyRecord>()
  for (const r of records) out.set(slot(r.collection, r.key), r)
  return out
}

/**
 * Adds LegacyRecordImported events to an index, keeping the newest version of each record, so
 * pages of a stream can be folded in any order. Events above `upTo` are left out. Without `check`
 * the checksums are not verified (actualChecksum undefined).
 */
export const foldImported = (
  into: Map<string, ImportedEntry>,
  events: Iterable<{ readonly version: number; readonly data: { readonly _tag: string } }>,
  check?: ReadBackCheck,
  upTo = Number.MAX_SAFE_INTEGER
): Map<string, ImportedEntry> => {
  for (const e of events) {
    if (e.data._tag !== "LegacyRecordImported" || e.version > upTo) continue
    const d = e.data as EventOf<"LegacyRecordImported">
    const s = slot(d.collection, d.key)
    const seen = into.get(s)
    if (seen && seen.version >= e.version) continue
    into.set(s, {
      collection: d.collection,
      key: d.key,
      checksum: d.checksum,
      actualChecksum: check ? actualChecksum(d, check) : undefined,
      version: e.version
    })
  }
  return into
}

const actualChecksum = (d: EventOf<"LegacyRecordImported">, check: ReadBackCheck): string => {
  const file = check.fileRecords?.get(slot(d.collection, d.key))
  if (file && file.collection === d.collection && file.key === d.key && sameJson(file.record, d.record)) return file.checksum
  return recordChecksum(d.collection, d.key, d.record, check.hash)
}

export interface CollectionPlan {
  readonly collection: string
  readonly inFiles: number
  readonly new: number
  readonly changed: number
  readonly unchanged: number
}

export interface ImportPlan {
  readonly toImport: ReadonlyArray<LegacyRecord>
  readonly collections: ReadonlyArray<CollectionPlan>
  readonly totals: { readonly inFiles: number; readonly new: number; readonly changed: number; readonly unchanged: number }
}

/** New records and records whose content changed since the last import are imported; the rest are skipped. */
export const planImport = (records: ReadonlyArray<LegacyRecord>, imported: ImportedIndex): ImportPlan => {
  const toImport: Array<LegacyRecord> = []
  const per = new Map<string, { inFiles: number; new: number; changed: number; unchanged: number }>()
  for (const r of records) {
    const c = per.get(r.collection) ?? { inFiles: 0, new: 0, changed: 0, unchanged: 0 }
    per.set(r.collection, c)
    c.inFiles++
    const before = imported.get(slot(r.collection, r.key))
    if (!before) {
      c.new++
      toImport.push(r)
    } else if (before.checksum !== r.checksum) {
      c.changed++
      toImport.push(r)
    } else c.unchanged++
  }
  const collections = [...per.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([collection, c]) => ({ collection, ...c }))
  const totals = collections.reduce(
    (t, c) => ({ inFiles: t.inFiles + c.inFiles, new: t.new + c.new, changed: t.changed + c.changed, unchanged: t.unchanged + c.unchanged }),
    { inFiles: 0, new: 0, changed: 0, unchanged: 0 }
  )
  return { toImport, collections, totals }
}

/** A deterministic id for one import run: the same files give the same id. */
export const importRunId = (records: ReadonlyArray<LegacyRecord>, hash: Hasher): string =>
  hash(records.map((r) => `${r.collection}\u0000${r.key}\u0000${r.checksum}`).join("\n")).slice(0, 16)

/** The importId of a record: derived from its checksum, so the same record always has the same id. */
export const recordImportId = (r: LegacyRecord): string => r.checksum.slice(0, 32)

/** One LegacyRecordImported event per record, all caused by the run (actor `import:<runId>`). */
export const importEvents = (
  records: ReadonlyArray<LegacyRecord>,
  options: { readonly runId: string; readonly occurredAt: string }
): ReadonlyArray<NewEvent> =>
  records.map((r) => ({
    occurredAt: options.occurredAt,
    correlationId: `import-${options.runId}`,
    causationId: null,
    actor: `import:${options.runId}`,
    data: {
      _tag: "LegacyRecordImported" as const,
      importId: recordImportId(r),
      collection: r.collection,
      key: r.key,
      record: r.record,
      source: r.source,
      checksum: r.checksum,
      at: options.occurredAt
    }
  }))

export interface CollectionReconciliation {
  readonly collection: string
  readonly inFiles: number
  /** Records of the collection in the log (including ones from earlier imports no longer in the files). */
  readonly inLog: number
  readonly matched: number
  readonly missing: number
  readonly different: number
}

export interface Difference {
  readonly collection: string
  readonly key: string
  readonly source: string
  readonly problem: "missing from the log" | "content differs" | "checksum recorded wrongly"
}

export interface Reconciliation {
  /** True when every record of the files is in the log with the same content. */
  readonly ok: boolean
  readonly collections: ReadonlyArray<CollectionReconciliation>
  /** The first differences found (at most `limit`). */
  readonly differences: ReadonlyArray<Difference>
  readonly differenceCount: number
}

/**
 * Compares every file record with the log as read back: present, same checksum recorded, and the
 * record read back hashing to the same checksum (so the content itself came through intact).
 */
export const reconcile = (records: ReadonlyArray<LegacyRecord>, readBack: ImportedIndex, limit = 20): Reconciliation => {
  const per = new Map<string, { inFiles: number; inLog: number; matched: number; missing: number; different: number }>()
  const stats = (c: string) => {
    const s = per.get(c) ?? { inFiles: 0, inLog: 0, matched: 0, missing: 0, different: 0 }
    per.set(c, s)
    return s
  }
  const differences: Array<Difference> = []
  let differenceCount = 0
  const differ = (d: Difference) => {
    differenceCount++
    if (differences.length < limit) differences.push(d)
  }
  for (const r of records) {
    const s = stats(r.collection)
    s.inFiles++
    const got = readBack.get(slot(r.collection, r.key))
    if (!got) {
      s.missing++
      differ({ collection: r.collection, key: r.key, source: r.source, problem: "missing from the log" })
    } else if (got.actualChecksum !== undefined && got.actualChecksum !== r.checksum) {
      s.different++
      differ({ collection: r.collection, key: r.key, source: r.source, problem: "content differs" })
    } else if (got.checksum !== r.checksum) {
      s.different++
      differ({ collection: r.collection, key: r.key, source: r.source, problem: "checksum recorded wrongly" })
    } else s.matched++
  }
  for (const e of readBack.values()) if (per.has(e.collection)) stats(e.collection).inLog++
  const collections = [...per.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([collection, c]) => ({ collection, ...c }))
  return { ok: differenceCount === 0, collections, differences, differenceCount }
}
