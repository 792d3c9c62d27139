import type { KeyCache } from "../privacy/keyCache.js"
import { openData } from "../privacy/sealingLog.js"
import { Effect, Either } from "effect"
import type { SqlClient, SqlTx } from "../db/sql.js"
import { ARCHIVE_COLUMNS, archiveFields, decodeArchiveRecord } from "./archiveRecord.js"
import type { ArchiveRecord } from "./archiveRecord.js"
import { chainAuditRows } from "./auditChain.js"
import { RebuildFailed } from "./errors.js"
import { mapBatch } from "./mapping/mapBatch.js"
import { LIVE_TABLES, PROJECTIONS, PROJECTION_TABLES } from "./mapping/rows.js"
import type { ProjectionInput, ProjectionName, TableName, TableNames } from "./mapping/rows.js"
import { projectionStatements } from "./mapping/statements.js"

export interface RebuildProgress {
  readonly phase: "copy" | "catch-up" | "compare" | "swap"
  readonly done: number
  readonly total: number
}

export interface TableComparison {
  readonly table: string
  readonly liveRows: number
  readonly rebuiltRows: number
  /** Rows of the live table the rebuild does not have (changed or extra rows). */
  readonly onlyLive: number
  /** Rows of the rebuild the live table does not have. */
  readonly onlyRebuilt: number
  readonly liveHash: string
  readonly rebuiltHash: string
}

export interface RebuildReport {
  readonly projection: ProjectionName
  /** Archived events replayed into the shadow tables. */
  readonly events: number
  /** Archived events that no longer decode (reported, not hidden; they are skipped). */
  readonly undecodable: number
  readonly tables: ReadonlyArray<TableComparison>
  /** True when every rebuilt table equals its live table row for row. */
  readonly identical: boolean
  readonly swapped: boolean
}

export interface RebuildOptions {
  readonly sql: SqlClient
  readonly projection: ProjectionName
  /** Archive rows per page (default 5000). */
  readonly batchSize?: number
  readonly onProgress?: (p: RebuildProgress) => void
  /** Switch the rebuilt tables in (default true); false only compares. */
  readonly swap?: boolean
  /**
   * Opens the sealed personal fields of the archived events as the projectors see them
   * (docs/privacy.md); absent, rebuilt rows would hold the sealed text. A forgotten user's rows
   * come back with `[erased]` fields (the live tables have none: a difference the report shows).
   */
  readonly keyCache?: KeyCache
}

/** Turns archive rows back into log entries (the archive keeps the fields as the log stored them). */
const toInputs = (rows: ReadonlyArray<ArchiveRecord>): { inputs: ProjectionInput[]; owners: Map<string, string>; undecodable: number } => {
  const inputs: ProjectionInput[] = []
  const owners = new Map<string, string>()
  let undecodable = 0
  for (const r of rows) {
    owners.set(r.bot_id, r.owner_id)
    const decoded = decodeArchiveRecord(r)
    if (Either.isLeft(decoded)) undecodable++
    else inputs.push({ event: decoded.right, raw: archiveFields(r) })
  }
  return { inputs, owners, undecodable }
}

const compare = async (tx: SqlTx, table: string, shadow: string): Promise<TableComparison> => {
  const hash = (t: string) => `(SELECT md5(coalesce(string_agg(h, '' ORDER BY h), '')) FROM (SELECT md5(r::text) AS h FROM ${t} r) x)`
  const { rows } = await tx.query<Record<string, string>>(
    `SELECT (SELECT count(*) FROM ${table}) AS live_rows, (SELECT count(*) FROM ${shadow}) AS rebuilt_rows,
            (SELECT count(*) FROM (SELECT * FROM ${table} EXCEPT ALL SELECT * FROM ${shadow}) a) AS only_live,
            (SELECT count(*) FROM (SELECT * FROM ${shadow} EXCEPT ALL SELECT * FROM ${table}) b) AS only_rebuilt,
            ${hash(table)} AS live_hash, ${hash(shadow)} AS rebuilt_hash`
  )
  const r = rows[0]!
  return {
    table,
    liveRows: Number(r["live_rows"]),
    rebuiltRows: Number(r["rebuilt_rows"]),
    onlyLive: Number(r["only_live"]),
    onlyRebuilt: Number(r["only_rebuilt"]),
    liveHash: r["live_hash"]!,
    rebuiltHash: r["rebuilt_hash"]!
  }
}

/**
 * Rebuilds one projection from the events archive into shadow tables (same partitions, policies
 * and grants), while the projectors keep running, then compares them row by row with the live
 * tables and switches them in atomically. Differences are reported, not hidden: the rebuilt
 * tables are what the events say, so they replace the live ones (unless `swap: false`).
 *
 * Why it is consistent: the projectors write every projection and the archive in one
 * transaction. The bulk copy runs without locks; the final step locks the live tables (waiting
 * for an in-flight projector transaction to commit, and holding the next ones back), then the
 * archive, replays the events archived meanwhile, compares and swaps, all in one transaction. The
 * locks are taken live tables first, archive last, the order a projector transaction takes them,
 * so the two cannot deadlock. Readers of the projection wait during that final step only.
 * Runs as the tables' owner (the migration role); one rebuild of a projection at a time.
 */
export const rebuild = (opts: RebuildOptions): Effect.Effect<RebuildReport, RebuildFailed> => {
  const { sql, projection } = opts
  const failed = (reason: string) => (cause: unknown) =>
    new RebuildFailed({ projection, reason: `${reason}: ${cause instanceof Error ? cause.message : String(cause)}`, cause })
  if (!PROJECTIONS.includes(projection)) return Effect.fail(new RebuildFailed({ projection, reason: "no such projection" }))
  if (projection === "archive") {
    return Effect.fail(new RebuildFailed({ projection, reason: "the events archive is the source of rebuilds; it is not rebuilt from itself" }))
  }
  const tables: ReadonlyArray<TableName> = PROJECTION_TABLES[projection]
  const shadowOf = (t: string) => `${t}_rebuild`
  const names: TableNames = { ...LIVE_TABLES, ...Object.fromEntries(tables.map((t) => [t, shadowOf(t)])) }
  const batchSize = opts.batchSize ?? 5000
  const progress = opts.onProgress ?? (() => undefined)

  const open = async (inputs: ReadonlyArray<ProjectionInput>): Promise<ReadonlyArray<ProjectionInput>> => {
    const cache = opts.keyCache
    if (!cache) return inputs
    return Promise.all(inputs.map(async (i) => {
      const data = await openData(cache, i.event.botId, i.event.data)
      return data === i.event.data ? i : { ...i, event: { ...i.event, data } }
    }))
  }
  const apply = async (tx: SqlTx, rows: ReadonlyArray<ArchiveRecord>, seen: Map<string, number>) => {
    const decoded = toInputs(rows)
    const { owners, undecodable } = decoded
    const inputs = await open(decoded.inputs)
    for (const r of rows) seen.set(r.bot_id, Math.max(seen.get(r.bot_id) ?? 0, r.version))
    const mapped = mapBatch(inputs, owners)
    // the audit chain is rebuilt onto the shadow table's lanes: the same chain the projector made
    const chained = projection === "audit" ? { ...mapped.rows, audit: [...(await chainAuditRows(tx, mapped.rows, names.audit_log))] } : mapped.rows
    for (const s of projectionStatements(projection, chained, names)) await tx.query(s.text, s.params)
    return undecodable
  }

  const run = async (): Promise<RebuildReport> => {
    for (const t of tables) await sql.exec(`DROP TABLE IF EXISTS ${shadowOf(t)} CASCADE`)
    for (const t of tables) await sql.query("SELECT bf_clone_table($1, $2)", [t, shadowOf(t)])
    const total = Number((await sql.query<{ n: string }>("SELECT count(*) AS n FROM events_archive")).rows[0]!.n)
    // highest version replayed per bot: the catch-up replays exactly what lies beyond
    const seen = new Map<string, number>()
    let done = 0
    let undecodable = 0
    let after: [string, number] | null = null
    progress({ phase: "copy", done, total })
    for (;;) {
      const page: ReadonlyArray<ArchiveRecord> = (
        await sql.query<ArchiveRecord & Record<string, unknown>>(
          `SELECT ${ARCHIVE_COLUMNS} FROM events_archive ${after ? "WHERE (bot_id, version) > ($2, $3)" : ""} ORDER BY bot_id, version LIMIT $1`,
          after ? [batchSize, after[0], after[1]] : [batchSize]
        )
      ).rows
      if (page.length === 0) break
      undecodable += await sql.transaction((tx) => apply(tx, page, seen))
      done += page.length
      const last = page[page.length - 1]!
      after = [last.bot_id, last.version]
      progress({ phase: "copy", done, total: Math.max(total, done) })
      if (page.length < batchSize) break
    }

    return sql.transaction(async (tx) => {
      // live tables first, archive last: the order a projector transaction locks them in
      for (const t of tables) await tx.query(`LOCK TABLE ${t} IN ACCESS EXCLUSIVE MODE`)
      await tx.query("LOCK TABLE events_archive IN SHARE MODE")
      const bots = [...seen.keys()]
      const rest = (
        await tx.query<ArchiveRecord & Record<string, unknown>>(
          `SELECT ${ARCHIVE_COLUMNS} FROM events_archive a
            WHERE NOT EXISTS (SELECT 1 FROM unnest($1::text[], $2::int[]) AS s(bot_id, version)
                               WHERE s.bot_id = a.bot_id AND a.version <= s.version)
            ORDER BY bot_id, version`,
          [bots, bots.map((b) => seen.get(b)!)]
        )
      ).rows
      progress({ phase: "catch-up", done: done + rest.length, total: done + rest.length })
      if (rest.length > 0) undecodable += await apply(tx, rest, seen)
      const comparisons: TableComparison[] = []
      for (const [i, t] of tables.entries()) {
        progress({ phase: "compare", done: i, total: tables.length })
        comparisons.push(await compare(tx, t, shadowOf(t)))
      }
      const identical = comparisons.every((c) => c.onlyLive === 0 && c.onlyRebuilt === 0)
      const swap = opts.swap ?? true
      if (swap) {
        progress({ phase: "swap", done: 0, total: 1 })
        for (const t of tables) await tx.query("SELECT bf_swap_table($1, $2)", [t, shadowOf(t)])
        await tx.query("SELECT bf_create_projection_views()")
        progress({ phase: "swap", done: 1, total: 1 })
      } else {
        for (const t of tables) await tx.exec(`DROP TABLE ${shadowOf(t)} CASCADE`)
      }
      return { projection, events: done + rest.length, undecodable, tables: comparisons, identical, swapped: swap }
    })
  }
  return Effect.tryPromise({ try: run, catch: failed("SQL failed") })
}
