import { Effect } from "effect"
import type { SqlClient } from "../../db/sql.js"
import { reasonOf, TargetFailed } from "./target.js"

/*
 * The restore drill's comparison: the projections rebuilt from a backup (in a scratch database)
 * against the live ones, row by row. The live fleet has moved on since the backup, so only what
 * the backup fixes is compared:
 * - a bot whose live projection stands exactly at the backup's last version ("settled"): every
 *   row of every per-bot projection table (bots, users, chats, sessions, imported records,
 *   messages, daily stats, audit, archive) must be equal;
 * - any other bot of the backup: its archived events and audit rows up to the version both sides
 *   have (those rows never change once written) must be equal;
 * - completeness: a bot or an event the live archive had before the backup started must be in it.
 * Rows are compared as JSON without their log position, partition and recorded time (the scratch
 * log has its own: a restore appends anew, so the archive's recorded_at is the restore's), page by page over the tables' keys, so memory does not grow with the fleet. The owners
 * table (counts over several bots) is not compared.
 */

interface Table {
  readonly name: string
  /** Primary key columns and their types, in index order. */
  readonly key: ReadonlyArray<readonly [string, string]>
}

const bot = ["bot_id", "text"] as const
const TABLES: ReadonlyArray<Table> = [
  { name: "bots", key: [bot] },
  { name: "bot_users", key: [bot, ["user_id", "bigint"]] },
  { name: "chats", key: [bot, ["chat_id", "bigint"]] },
  { name: "bot_sessions", key: [bot, ["session_key", "text"]] },
  { name: "imported_records", key: [bot, ["collection", "text"], ["record_key", "text"]] },
  { name: "messages", key: [bot, ["version", "integer"]] },
  { name: "daily_stats", key: [bot, ["day", "date"]] },
  { name: "daily_active_users", key: [bot, ["day", "date"], ["user_id", "bigint"]] },
  { name: "stats_first_seen", key: [bot, ["user_id", "bigint"]] },
  { name: "audit_log", key: [bot, ["version", "integer"]] },
  { name: "events_archive", key: [bot, ["version", "integer"]] }
]
/** Rows that never change once written: comparable up to a version while the bot goes on. */
const IMMUTABLE = new Set(["audit_log", "events_archive"])

/** Events the live archive had this long before the backup started must be in it (appends in flight are not). */
const IN_FLIGHT_MS = 60_000
const PAGE = 2000
/** Differences described one by one, at most. */
const EXAMPLES = 20

export interface TableDifference {
  readonly table: string
  readonly onlyLive: number
  readonly onlyBackup: number
  readonly differing: number
}

export interface Comparison {
  readonly identical: boolean
  /** Bots compared in full (their live projection stands at the backup's version) and in part. */
  readonly settledBots: number
  readonly partialBots: number
  readonly rowsCompared: number
  readonly tables: ReadonlyArray<TableDifference>
  /** Bots or events the live archive had before the backup started that the backup lacks. */
  readonly missingFromBackup: ReadonlyArray<string>
  /** The first differences, e.g. `bots bot_id=alpha: differs`. */
  readonly examples: ReadonlyArray<string>
}

interface Row {
  readonly key: string
  readonly row: string
}

type Filter = { readonly _tag: "All"; readonly bots: ReadonlyArray<string> } | { readonly _tag: "Upto"; readonly bots: ReadonlyArray<string>; readonly upto: ReadonlyArray<number> }

/** Reads one page of a table in key order, after `after` and up to `through` (both key values as text), as JSON rows. */
const page = (sql: SqlClient, t: Table, filter: Filter, after: ReadonlyArray<string> | null, through: ReadonlyArray<string> | null): Promise<Array<Row & { keys: Array<string> }>> => {
  const cols = t.key.map(([c]) => `t.${c}`).join(", ")
  const params: Array<unknown> = [filter.bots]
  const bound = (values: ReadonlyArray<string>) => `(${t.key.map(([, type], i) => `$${params.push(values[i]!)}::${type}`).join(", ")})`
  const join = filter._tag === "Upto" ? `JOIN unnest($1::text[], $${params.push(filter.upto)}::integer[]) AS f(b, upto) ON f.b = t.bot_id` : ""
  const where = [
    filter._tag === "All" ? "t.bot_id = ANY($1::text[])" : "t.version <= f.upto",
    ...(after ? [`(${cols}) > ${bound(after)}`] : []),
    ...(through ? [`(${cols}) <= ${bound(through)}`] : [])
  ]
  const text = `SELECT ${t.key.map(([c], i) => `t.${c}::text AS k${i}`).join(", ")}, (to_jsonb(t) - 'position' - 'log_partition' - 'recorded_at')::text AS r
    FROM ${t.name} t ${join} WHERE ${where.join(" AND ")} ORDER BY ${cols} LIMIT ${PAGE}`
  // timestamps in the JSON are rendered in the session's time zone: the same on both sides
  return sql.transaction(async (tx) => {
    await tx.query("SET LOCAL TIME ZONE 'UTC'")
    const { rows } = await tx.query<Record<string, string>>(text, params)
    return rows.map((r) => {
      const keys = t.key.map((_, i) => r[`k${i}`]!)
      return { keys, key: t.key.map(([c], i) => `${c}=${keys[i]}`).join(" "), row: r["r"]! }
    })
  })
}

/** Names the columns two JSON rows disagree on, with both values (cut short), so a report says what differs. */
const differingColumns = (live: string, backup: string): string => {
  const a = JSON.parse(live) as Record<string, unknown>
  const b = JSON.parse(backup) as Record<string, unknown>
  const cut = (v: unknown) => (JSON.stringify(v) ?? "absent").slice(0, 120)
  return [...new Set([...Object.keys(a), ...Object.keys(b)])]
    .filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]))
    .map((k) => `${k} (live ${cut(a[k])}; backup ${cut(b[k])})`)
    .join(", ")
}

/**
 * Compares one table on both sides over the same key ranges: each live page fixes a range (after
 * the previous page, up to its last key) and the scratch side is read over exactly that range, so
 * both sides are matched by key without ordering text in JavaScript.
 */
const compareTable = async (live: SqlClient, scratch: SqlClient, t: Table, filter: Filter, examples: Array<string>) => {
  const diff = { table: t.name, onlyLive: 0, onlyBackup: 0, differing: 0 }
  const note = (s: string) => void (examples.length < EXAMPLES && examples.push(s))
  let rows = 0
  let after: ReadonlyArray<string> | null = null
  for (;;) {
    const livePage = await page(live, t, filter, after, null)
    const through = livePage.length === PAGE ? livePage[livePage.length - 1]!.keys : null
    // the last live page leaves the range open: the backup's rows past it are only in the backup
    const scratchRows: Array<Row> = []
    for (let from = after; ; ) {
      const p = await page(scratch, t, filter, from, through)
      scratchRows.push(...p)
      if (p.length < PAGE) break
      from = p[p.length - 1]!.keys
    }
    const backupByKey = new Map(scratchRows.map((r) => [r.key, r.row]))
    for (const r of livePage) {
      rows++
      const b = backupByKey.get(r.key)
      backupByKey.delete(r.key)
      if (b === undefined) {
        diff.onlyLive++
        note(`${t.name} ${r.key}: only in the live projection`)
      } else if (b !== r.row) {
        diff.differing++
        note(`${t.name} ${r.key}: differs in ${differingColumns(r.row, b)}`)
      }
    }
    for (const k of backupByKey.keys()) {
      diff.onlyBackup++
      note(`${t.name} ${k}: only in the backup`)
    }
    if (through === null) break
    after = through
  }
  return { diff, rows }
}

const versionsBy = async (sql: SqlClient, query: string, params: ReadonlyArray<unknown> = []) =>
  new Map((await sql.query<{ bot_id: string; v: number | string }>(query, params)).rows.map((r) => [r.bot_id, Number(r.v)]))

/** Compares the projections restored into `scratch` with the live ones (see the top of this file). */
export const compareWithLive = (o: { readonly live: SqlClient; readonly scratch: SqlClient; readonly startedAt: string | undefined }): Effect.Effect<Comparison, TargetFailed> =>
  Effect.tryPromise({
    try: async () => {
      const backup = await versionsBy(o.scratch, "SELECT bot_id, max(version) AS v FROM events_archive GROUP BY bot_id")
      const liveArchived = await versionsBy(o.live, "SELECT bot_id, max(version) AS v FROM events_archive GROUP BY bot_id")
      const liveProjected = await versionsBy(o.live, "SELECT bot_id, version AS v FROM bots")
      const settled: Array<string> = []
      const partial: Array<[string, number]> = []
      for (const [b, v] of backup) {
        if (liveProjected.get(b) === v && liveArchived.get(b) === v) settled.push(b)
        else partial.push([b, Math.min(v, liveArchived.get(b) ?? 0)])
      }
      const missingFromBackup: Array<string> = []
      if (o.startedAt !== undefined) {
        const before = new Date(Date.parse(o.startedAt) - IN_FLIGHT_MS).toISOString()
        const { rows } = await o.live.query<{ bot_id: string; n: string }>(
          `SELECT a.bot_id, count(*) AS n FROM events_archive a
             LEFT JOIN unnest($1::text[], $2::integer[]) AS f(b, v) ON f.b = a.bot_id
            WHERE a.occurred_at < $3::timestamptz AND (f.v IS NULL OR a.version > f.v)
            GROUP BY a.bot_id ORDER BY a.bot_id LIMIT 100`,
          [[...backup.keys()], [...backup.values()], before]
        )
        for (const r of rows) missingFromBackup.push(`bot ${r.bot_id}: ${r.n} events archived before the backup started are not in it`)
      }
      const examples: Array<string> = [...missingFromBackup.slice(0, EXAMPLES)]
      const tables = new Map<string, TableDifference>()
      let rowsCompared = 0
      const add = (d: TableDifference) => {
        const t = tables.get(d.table) ?? { table: d.table, onlyLive: 0, onlyBackup: 0, differing: 0 }
        tables.set(d.table, { table: d.table, onlyLive: t.onlyLive + d.onlyLive, onlyBackup: t.onlyBackup + d.onlyBackup, differing: t.differing + d.differing })
      }
      for (const t of TABLES) {
        if (settled.length > 0) {
          const r = await compareTable(o.live, o.scratch, t, { _tag: "All", bots: settled }, examples)
          add(r.diff)
          rowsCompared += r.rows
        }
        if (partial.length > 0 && IMMUTABLE.has(t.name)) {
          const r = await compareTable(o.live, o.scratch, t, { _tag: "Upto", bots: partial.map((p) => p[0]), upto: partial.map((p) => p[1]) }, examples)
          add(r.diff)
          rowsCompared += r.rows
        }
      }
      const all = [...tables.values()]
      const identical = missingFromBackup.length === 0 && all.every((d) => d.onlyLive + d.onlyBackup + d.differing === 0)
      return { identical, settledBots: settled.length, partialBots: partial.length, rowsCompared, tables: all.filter((d) => d.onlyLive + d.onlyBackup + d.differing > 0), missingFromBackup, examples }
    },
    catch: (e) => new TargetFailed({ where: "comparison with the live projections", reason: reasonOf(e) })
  })
