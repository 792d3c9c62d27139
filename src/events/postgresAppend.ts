import { randomUUID } from "node:crypto"
import { Either } from "effect"
import type { SqlClient, SqlTx } from "../db/sql.js"
import { encodeAppend } from "./codec.js"
import type { EncodedEvent } from "./codec.js"
import type { InvalidEvent} from "./errors.js";
import { StaleFence, WrongExpectedVersion } from "./errors.js"
import type { AppendRequest, AppendResult } from "./eventLog.js"
import { partitionOf } from "./partition.js"
import { formatPosition } from "./postgresPosition.js"

/** An append validated and encoded: nothing about it has reached the database yet. */
export interface PreparedAppend {
  readonly req: AppendRequest
  readonly partition: number
  readonly encoded: ReadonlyArray<EncodedEvent>
}

export type AppendOutcome = Either.Either<AppendResult, StaleFence | WrongExpectedVersion>

/** Validates and encodes an append before any SQL: an invalid append writes nothing. */
export const prepareAppend = (req: AppendRequest, partitions: number): Either.Either<PreparedAppend, InvalidEvent> => {
  return Either.map(encodeAppend(req, randomUUID), (encoded) => ({ req, partition: partitionOf(req.botId, partitions), encoded }))
}

/** Advisory lock class of stream locks ("bf"); the object id is a 32-bit hash of the bot id. */
const STREAM_LOCK_CLASS = 0x6266
const streamLockKey = (botId: string): number => partitionOf(botId, 2 ** 32) | 0

const INSERT_EVENTS = `WITH ins AS (
  INSERT INTO events (partition, bot_id, version, event_id, type, schema_version, occurred_at, correlation_id, causation_id, actor, data)
  SELECT u.partition, u.bot_id, u.version, u.event_id, u.type, u.schema_version, u.occurred_at, u.correlation_id, u.causation_id, u.actor, u.data::jsonb
  FROM unnest($1::smallint[], $2::text[], $3::int[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
    WITH ORDINALITY AS u(partition, bot_id, version, event_id, type, schema_version, occurred_at, correlation_id, causation_id, actor, data, ord)
  ORDER BY u.ord
  RETURNING bot_id, version, tx, position
), st AS (
  INSERT INTO streams (bot_id, partition, version)
  SELECT * FROM unnest($12::text[], $13::smallint[], $14::int[])
  ON CONFLICT (bot_id) DO UPDATE SET version = EXCLUDED.version
)
SELECT bot_id, version, tx, position FROM ins`

/**
 * Appends a batch in ONE transaction of four statements, however many appends it holds:
 * 1. lock every bot's stream (transaction-scoped advisory locks, taken in key order so two batches
 *    cannot deadlock). The lock comes first and assigns no transaction id: the id is assigned by the
 *    insert, after the lock, so a bot's later append always has a larger tx than its earlier one,
 *    and the partition log (ordered by tx) keeps each bot's order;
 * 2. read each bot's version and lease (after the lock: the latest committed ones);
 * 3. decide each append in order (fence, then expected version; a batch may hold several appends
 *    of one bot, each sees the ones before it);
 * 4. insert the accepted events and the new stream versions in one multi-row statement.
 * A unique violation on (bot_id, version) can only come from a writer bypassing the locks; it
 * aborts the transaction and is thrown to the caller, which maps it.
 */
export const appendBatch = (sql: SqlClient, batch: ReadonlyArray<PreparedAppend>): Promise<AppendOutcome[]> =>
  sql.transaction(async (tx) => {
    const bots = [...new Set(batch.map((p) => p.req.botId))]
    const keys = [...new Set(bots.map(streamLockKey))].sort((a, b) => a - b)
    await tx.query("SELECT pg_advisory_xact_lock($1::int, k) FROM unnest($2::int[]) AS k", [STREAM_LOCK_CLASS, keys])
    const state = await readState(tx, bots)

    const outcomes: Array<AppendOutcome | { readonly botId: string; readonly versions: number[] }> = []
    const cols = { partition: [] as number[], bot: [] as string[], version: [] as number[], eventId: [] as string[], type: [] as string[],
      schemaVersion: [] as number[], occurredAt: [] as string[], correlationId: [] as string[], causationId: [] as Array<string | null>,
      actor: [] as string[], data: [] as string[] }
    for (const p of batch) {
      const { botId, fence, expectedVersion } = p.req
      const st = state.get(botId)!
      if (st.fence === null || st.fence !== fence) {
        outcomes.push(Either.left(new StaleFence({ botId, fence, current: st.fence ?? 0 })))
        continue
      }
      if (st.version !== expectedVersion) {
        outcomes.push(Either.left(new WrongExpectedVersion({ botId, expected: expectedVersion, actual: st.version })))
        continue
      }
      const versions: number[] = []
      for (const e of p.encoded) {
        st.version += 1
        versions.push(st.version)
        cols.partition.push(p.partition)
        cols.bot.push(botId)
        cols.version.push(st.version)
        cols.eventId.push(e.eventId)
        cols.type.push(e.type)
        cols.schemaVersion.push(e.schemaVersion)
        cols.occurredAt.push(e.occurredAt)
        cols.correlationId.push(e.correlationId)
        cols.causationId.push(e.causationId === "" ? null : e.causationId)
        cols.actor.push(e.actor)
        cols.data.push(e.data)
      }
      st.changed = true
      st.partition = p.partition
      outcomes.push({ botId, versions })
    }
    if (cols.bot.length === 0) return outcomes as AppendOutcome[]

    const changed = [...state.entries()].filter(([, s]) => s.changed)
    const { rows } = await tx.query<{ bot_id: string; version: number; tx: string; position: string }>(INSERT_EVENTS, [
      cols.partition, cols.bot, cols.version, cols.eventId, cols.type, cols.schemaVersion, cols.occurredAt,
      cols.correlationId, cols.causationId, cols.actor, cols.data,
      changed.map(([bot]) => bot), changed.map(([, s]) => s.partition), changed.map(([, s]) => s.version)
    ])
    const positionOf = new Map(rows.map((r) => [`${r.version}/${r.bot_id}`, formatPosition({ tx: r.tx, seq: r.position })]))
    return outcomes.map((o) =>
      "versions" in o
        ? Either.right({
            botId: o.botId,
            version: o.versions.at(-1)!,
            positions: o.versions.map((v) => positionOf.get(`${v}/${o.botId}`)!)
          })
        : o
    )
  })

interface BotState {
  version: number
  /** The current fence, null when no lease was issued or it was released. */
  readonly fence: number | null
  partition: number
  changed: boolean
}

const readState = async (tx: SqlTx, bots: ReadonlyArray<string>): Promise<Map<string, BotState>> => {
  const { rows } = await tx.query<{ bot_id: string; version: number; fence: string | null; released: boolean | null }>(
    // the highest stored version also counts, in case a writer bypassed this code and `streams`
    `SELECT b.bot_id, greatest(s.version, (SELECT max(e.version) FROM events e WHERE e.bot_id = b.bot_id), 0) AS version, l.fence, l.released
     FROM unnest($1::text[]) AS b(bot_id)
     LEFT JOIN streams s ON s.bot_id = b.bot_id
     LEFT JOIN leases l ON l.bot_id = b.bot_id`,
    [bots]
  )
  return new Map(
    rows.map((r) => [
      r.bot_id,
      { version: r.version, fence: r.fence === null || r.released ? null : Number(r.fence), partition: 0, changed: false }
    ])
  )
}
