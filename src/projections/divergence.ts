import type { SqlClient, SqlTx } from "../db/sql.js"
import type { MappingFailure, ProjectionInput } from "./mapping/rows.js"

/*
 * The hot log and the archive must tell the same history. They stop doing so when Redis loses
 * acknowledged writes (the last second of an `appendfsync everysec` AOF in a crash, a failover to
 * a lagging replica) after the projector archived them: the bot goes on from what Redis still has
 * and appends new events at versions the archive already holds. Archiving with `ON CONFLICT DO
 * NOTHING` would drop those silently, and archive the bot's later events on top of a history
 * they were not decided from. So every event whose version the archive may already hold is
 * compared with it first (docs/redis.md, "When the hot log and the archive diverge").
 */

/** What the projections know of a bot before a batch. */
export interface BotArchiveState {
  /** null: the bot has no row in `bots` (registered in this batch, or refused). */
  readonly owner: string | null
  /** The bot's kind (metrics label the projected events by it); null without a row. */
  readonly kind: string | null
  /** Highest version projected (and archived) so far; 0 when none. */
  readonly version: number
  /** The first version at which its hot log diverged from the archive, unresolved; null when none. */
  readonly divergedAt: number | null
}

/** One version where the hot log delivered another event than the archive holds. */
export interface Divergence {
  readonly bot_id: string
  readonly version: number
  readonly owner_id: string
  readonly archived_event_id: string
  readonly archived_type: string
  readonly log_event_id: string
  readonly log_type: string
  readonly log_partition: number
  readonly log_position: string
}

export interface Screened {
  /** What to project. */
  readonly inputs: ReadonlyArray<ProjectionInput>
  /** Diverged and held entries: dead-lettered with the reason, never archived. */
  readonly refused: ReadonlyArray<MappingFailure>
  /** Divergences found in this batch, to record with the checkpoint. */
  readonly divergences: ReadonlyArray<Divergence>
  /** Entries the archive already holds identically (the same event id): skipped, nothing to do. */
  readonly duplicates: number
}

/** Dead-letter reasons start with these, so `status` can count them apart from other refusals. */
export const DIVERGED_REASON = "diverged from the archive"
export const HELD_REASON = "held: the bot's hot log diverged from the archive"

/** Owner, projected version and unresolved divergence of each bot, read in the caller's transaction. */
export const readBotStates = async (tx: SqlTx, botIds: ReadonlyArray<string>): Promise<Map<string, BotArchiveState>> => {
  if (botIds.length === 0) return new Map()
  const { rows } = await tx.query<{ bot_id: string; owner_id: string | null; kind: string | null; version: number | null; diverged_at: number | null }>(
    `SELECT u.bot_id, b.owner_id, b.kind, b.version,
            (SELECT min(d.version) FROM archive_divergences d WHERE d.bot_id = u.bot_id) AS diverged_at
       FROM unnest($1::text[]) AS u(bot_id) LEFT JOIN bots b ON b.bot_id = u.bot_id`,
    [botIds]
  )
  return new Map(rows.map((r) => [r.bot_id, { owner: r.owner_id, kind: r.kind, version: r.version ?? 0, divergedAt: r.diverged_at }]))
}

const key = (botId: string, version: number) => `${botId}\u0000${version}`

/**
 * Splits a batch (in log order) into what to project and what to hold. Guarantees:
 * - an event at a version the archive holds with the same event id is skipped (already there);
 * - one the archive holds with another event id is a divergence: refused (DIVERGED_REASON), and
 *   so is every later event of that bot (HELD_REASON), in this batch and, through the recorded
 *   divergence, in every later batch until an operator resolves it;
 * - two entries of one batch at the same version with different event ids are a divergence too;
 * - nothing else is touched, and the archive is read only for versions at or below what the bot
 *   had projected (none in the steady state: no query then), or for all with `checkAll`.
 */
export const screenAgainstArchive = async (
  tx: SqlTx,
  inputs: ReadonlyArray<ProjectionInput>,
  states: ReadonlyMap<string, BotArchiveState>,
  /** Look every event up (after the archive refused an insert the projected versions did not foresee). */
  checkAll = false
): Promise<Screened> => {
  const candidates = inputs.filter((i) => {
    const s = states.get(i.event.botId)
    return s?.divergedAt == null && (checkAll || (s !== undefined && i.event.version <= s.version))
  })
  const archived = new Map<string, { event_id: string; type: string }>()
  if (candidates.length > 0) {
    const { rows } = await tx.query<{ bot_id: string; version: number; event_id: string; type: string }>(
      `SELECT a.bot_id, a.version, a.event_id, a.type FROM events_archive a
         JOIN unnest($1::text[], $2::int[]) AS u(bot_id, version) ON a.bot_id = u.bot_id AND a.version = u.version`,
      [candidates.map((c) => c.event.botId), candidates.map((c) => c.event.version)]
    )
    for (const r of rows) archived.set(key(r.bot_id, r.version), { event_id: r.event_id, type: r.type })
  }
  const held = new Map<string, number>()
  for (const [botId, s] of states) if (s.divergedAt !== null) held.set(botId, s.divergedAt)
  const inBatch = new Map<string, { event_id: string; type: string }>()
  const keep: ProjectionInput[] = []
  const refused: MappingFailure[] = []
  const divergences: Divergence[] = []
  let duplicates = 0
  for (const input of inputs) {
    const e = input.event
    const at = held.get(e.botId)
    if (at !== undefined) {
      refused.push({
        position: e.position,
        reason: `${HELD_REASON} at version ${at}; this event (version ${e.version}, ${e.type}, id ${e.eventId}) waits until an operator resolves it (docs/redis.md)`
      })
      continue
    }
    const k = key(e.botId, e.version)
    const there = archived.get(k) ?? inBatch.get(k)
    if (there === undefined) {
      inBatch.set(k, { event_id: e.eventId, type: e.type })
      keep.push(input)
      continue
    }
    if (there.event_id === e.eventId) {
      duplicates++
      continue
    }
    const owner = states.get(e.botId)?.owner ?? (e.data._tag === "BotRegistered" ? e.data.ownerId : "")
    divergences.push({
      bot_id: e.botId, version: e.version, owner_id: owner, archived_event_id: there.event_id, archived_type: there.type,
      log_event_id: e.eventId, log_type: e.type, log_partition: e.partition, log_position: e.position
    })
    held.set(e.botId, e.version)
    refused.push({
      position: e.position,
      reason: `${DIVERGED_REASON}: bot ${e.botId} version ${e.version}: the archive holds event ${there.event_id} (${there.type}), ` +
        `the hot log has event ${e.eventId} (${e.type}); the archive's copy stays, this one and the bot's later events are held (docs/redis.md)`
    })
  }
  return { inputs: keep, refused, divergences, duplicates }
}

/** Records divergences in the caller's transaction (the projector's, with its checkpoint). */
export const recordDivergences = async (tx: SqlTx, ds: ReadonlyArray<Divergence>): Promise<void> => {
  if (ds.length === 0) return
  const cols = ["bot_id", "version", "owner_id", "archived_event_id", "archived_type", "log_event_id", "log_type", "log_partition", "log_position"] as const
  const types = ["text", "int", "text", "text", "text", "text", "text", "int", "text"]
  await tx.query(
    `INSERT INTO archive_divergences (${cols.join(", ")})
     SELECT * FROM unnest(${cols.map((_, i) => `$${i + 1}::${types[i]}[]`).join(", ")})
     ON CONFLICT (bot_id, version) DO NOTHING`,
    cols.map((c) => ds.map((d) => d[c]))
  )
}

/** A recorded divergence, as `botfleet status` lists it. */
export interface RecordedDivergence {
  readonly botId: string
  readonly version: number
  readonly ownerId: string
  readonly archivedEventId: string
  readonly archivedType: string
  readonly logEventId: string
  readonly logType: string
  readonly logPartition: number
  readonly logPosition: string
  readonly detectedAt: string
}

/** Every unresolved divergence, oldest first. */
export const readDivergences = async (sql: SqlClient | SqlTx): Promise<ReadonlyArray<RecordedDivergence>> =>
  (
    await sql.query<{
      bot_id: string; version: number; owner_id: string; archived_event_id: string; archived_type: string; log_event_id: string
      log_type: string; log_partition: number; log_position: string; detected_at: string
    }>(
      `SELECT bot_id, version, owner_id, archived_event_id, archived_type, log_event_id, log_type, log_partition, log_position,
              to_char(detected_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS detected_at
         FROM archive_divergences ORDER BY detected_at, bot_id, version`
    )
  ).rows.map((r) => ({
    botId: r.bot_id, version: r.version, ownerId: r.owner_id, archivedEventId: r.archived_event_id, archivedType: r.archived_type,
    logEventId: r.log_event_id, logType: r.log_type, logPartition: r.log_partition, logPosition: r.log_position, detectedAt: r.detected_at
  }))

/**
 * The archive already held a row the batch was about to add, although the projected versions said
 * it could not (a row inserted by someone else): the transaction is rolled back and the batch is
 * screened again with every event looked up, so the conflict is reported, never dropped.
 */
export class ArchiveConflict extends Error {
  readonly _tag = "ArchiveConflict"
  constructor(readonly expected: number, readonly inserted: number) {
    super(`the archive already held ${expected - inserted} of the batch's ${expected} events: screening the batch again`)
  }
}
