import { hash as cryptoHash } from "node:crypto"
import { readFile } from "node:fs/promises"
import { Effect, Fiber } from "effect"
import type { AppendError, InvalidEvent, LogUnavailable } from "../../events/errors.js"
import { EventLog } from "../../events/eventLog.js"
import { BotBusy, BotNotFound, ImportInterrupted, ImportRefused } from "./errors.js"
import { parseLegacyFile } from "./legacyFile.pure.js"
import { importEvents, importRunId, mergeFiles, planImport, reconcile, recordsBySlot } from "./plan.pure.js"
import type { ImportedEntry, ImportPlan, Reconciliation } from "./plan.pure.js"
import { indexRange, indexWholeStream } from "./readBack.js"
import type { Hasher, ImportProblem, LegacyFormat, ParsedFile } from "./records.pure.js"

/** sha-256 in hex (the one-shot `crypto.hash`, cheaper than createHash per record). */
export const sha256: Hasher = (text) => cryptoHash("sha256", text, "hex")

export type ImportPhase = "read" | "write" | "verify"

export interface ImportOptions {
  readonly botId: string
  readonly files: ReadonlyArray<string>
  readonly dryRun?: boolean
  /** Node name the import takes the bot's lease as. */
  readonly nodeId?: string
  readonly now?: () => Date
  /** Called as work advances (files read, events written, events read back and checked). */
  readonly onProgress?: (phase: ImportPhase, done: number, total: number) => void
  /** Events per append (default MAX_EVENTS_PER_APPEND). */
  readonly maxEventsPerAppend?: number
  /** Events per page when reading the bot's stream. */
  readonly pageSize?: number
}

export interface ImportReport {
  readonly botId: string
  readonly runId: string
  readonly dryRun: boolean
  readonly files: ReadonlyArray<{ readonly file: string; readonly format: LegacyFormat; readonly records: number; readonly notes: Readonly<Record<string, number>> }>
  /** Identical records found in more than one file (counted once). */
  readonly repeated: number
  readonly plan: Omit<ImportPlan, "toImport">
  /** Versions of the appended events; absent when nothing was written. */
  readonly appended?: { readonly fromVersion: number; readonly toVersion: number; readonly events: number }
  /** Wall-clock time of the whole run (read, plan, append, read back) and records of the files per second of it. */
  readonly timing: { readonly ms: number; readonly recordsPerSecond: number }
  /** Absent on a dry run. */
  readonly reconciliation?: Reconciliation
}

export type ImportError = ImportRefused | BotNotFound | BotBusy | ImportInterrupted | AppendError | LogUnavailable | InvalidEvent

/**
 * Events per append. An import up to this size is one append: all or nothing (on Redis one Lua
 * call, on Postgres one transaction). A larger one is written in appends of this size under one
 * lease, because a single call beyond it would hold Redis for seconds and stall every other bot of
 * the node; if it is cut short, what was written stays and running the same import again finishes
 * it (records already in the log are skipped).
 */
export const MAX_EVENTS_PER_APPEND = 50_000

/** Reads and validates every file; all problems of all files are reported together. */
export const readLegacyFiles = (
  files: ReadonlyArray<string>,
  hash: Hasher = sha256,
  onFile?: (done: number, total: number) => void
): Effect.Effect<ReadonlyArray<ParsedFile>, ImportRefused> =>
  Effect.gen(function* () {
    const parsed: Array<ParsedFile> = []
    const problems: Array<ImportProblem> = []
    for (const [i, file] of files.entries()) {
      const text = yield* Effect.tryPromise(() => readFile(file, "utf8")).pipe(
        Effect.catchAll((e) => {
          const cause = (e.cause as NodeJS.ErrnoException | undefined)?.code ?? String(e.cause)
          problems.push({ file, path: "$", reason: `cannot read the file (${cause}): check the path and permissions` })
          return Effect.succeed(undefined)
        })
      )
      if (text !== undefined) {
        const r = parseLegacyFile(file, text, hash)
        if (r.ok) parsed.push(r.parsed)
        else problems.push(...r.problems)
      }
      onFile?.(i + 1, files.length)
    }
    if (problems.length > 0) return yield* new ImportRefused({ problems })
    return parsed
  })

/**
 * Imports legacy JSON files into a bot's stream as LegacyRecordImported events.
 * - Everything is validated before anything is written; a problem anywhere refuses the whole import.
 * - All-or-nothing up to MAX_EVENTS_PER_APPEND records: the events go in ONE append (version-checked
 *   and fenced under the bot's lease); larger imports are resumable (see MAX_EVENTS_PER_APPEND).
 * - Idempotent: a record already imported with the same content is skipped (ids derive from content).
 * - Afterwards the stream is read back and every file record reconciled against it.
 */
export const importLegacy = (options: ImportOptions): Effect.Effect<ImportReport, ImportError, EventLog> =>
  Effect.gen(function* () {
    const log = yield* EventLog
    const hash = sha256
    const startedAt = performance.now()
    const timing = (records: number) => {
      const ms = Math.max(1, Math.round(performance.now() - startedAt))
      return { ms, recordsPerSecond: Math.round((records * 1000) / ms) }
    }
    const parsed = yield* readLegacyFiles(options.files, hash, (done, total) => options.onProgress?.("read", done, total))
    const merged = mergeFiles(parsed)
    if (!merged.ok) return yield* new ImportRefused({ problems: merged.problems })
    const records = merged.records
    const runId = importRunId(records, hash)

    // verified: each record read back is checked against the files (ReadBackCheck)
    const imported = new Map<string, ImportedEntry>()
    const check = { hash, fileRecords: recordsBySlot(records) }
    const before = yield* indexWholeStream(log, options.botId, imported, check, options.pageSize)
    if (before.events === 0) return yield* new BotNotFound({ botId: options.botId })
    const version = before.lastVersion
    const plan = planImport(records, imported)
    const base = {
      botId: options.botId,
      runId,
      dryRun: options.dryRun === true,
      files: parsed.map((f) => ({ file: f.file, format: f.format, records: f.records.length, notes: f.notes })),
      repeated: merged.repeated,
      plan: { collections: plan.collections, totals: plan.totals }
    }
    if (options.dryRun) return { ...base, timing: timing(records.length) }

    let appended: ImportReport["appended"]
    if (plan.toImport.length > 0) {
      const events = importEvents(plan.toImport, { runId, occurredAt: (options.now?.() ?? new Date()).toISOString() })
      const nodeId = options.nodeId ?? `import-${runId}`
      const ttl = 120_000
      let lease = yield* log.acquireLease(options.botId, nodeId, ttl)
      if (!lease) {
        const holder = yield* log.readLease(options.botId)
        return yield* new BotBusy({ botId: options.botId, nodeId: holder?.nodeId ?? "another node" })
      }
      const chunk = Math.max(1, options.maxEventsPerAppend ?? MAX_EVENTS_PER_APPEND)
      let at = version
      let verified = 0
      const onPage = (n: number) => {
        verified += n
        options.onProgress?.("verify", verified, events.length)
      }
      // each append is read back (only what this run wrote; what was there before was read above)
      // while the next one is encoded and written: the log serves the pages while Node checks them
      const readingBack: Array<Fiber.RuntimeFiber<void, LogUnavailable | InvalidEvent>> = []
      const write = Effect.gen(function* () {
        for (let i = 0; i < events.length; i += chunk) {
          options.onProgress?.("write", i, events.length)
          const slice = events.slice(i, i + chunk)
          const r = yield* log.append({ botId: options.botId, expectedVersion: at, fence: lease!.fence, events: slice }).pipe(
            Effect.mapError((cause) => (i === 0 ? cause : new ImportInterrupted({ botId: options.botId, written: i, total: events.length, cause })))
          )
          const more = i + chunk < events.length
          readingBack.push(
            yield* Effect.fork(
              indexRange(log, options.botId, { from: at + 1, to: r.version }, imported, check, {
                ...(options.pageSize ? { pageSize: options.pageSize } : {}),
                // all of a chunk's pages are asked for before the next append, which Redis runs after them
                ...(more ? { inFlight: Number.MAX_SAFE_INTEGER } : {}),
                onPage
              })
            )
          )
          at = r.version
          if (more) {
            const renewed = yield* log.renewLease(lease!, ttl)
            if (!renewed) {
              return yield* new ImportInterrupted({ botId: options.botId, written: i + slice.length, total: events.length, cause: "the bot's lease was lost" })
            }
            lease = renewed
          }
        }
        options.onProgress?.("write", events.length, events.length)
      })
      yield* write.pipe(Effect.ensuring(Effect.suspend(() => log.releaseLease(lease!)).pipe(Effect.ignore)))
      appended = { fromVersion: version + 1, toVersion: at, events: events.length }
      for (const f of readingBack) yield* Fiber.join(f)
    }

    const reconciliation = reconcile(records, imported)
    return { ...base, ...(appended ? { appended } : {}), reconciliation, timing: timing(records.length) }
  })
