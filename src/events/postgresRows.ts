import { Either } from "effect"
import { decodeFields, withPosition } from "./codec.js"
import type { EventFields } from "./codec.js"
import type { Delivery, RawFields } from "./eventLog.js"
import { formatPosition } from "./postgresPosition.js"

/** The columns every read of `events` selects, in the shape EventRow describes. */
export const EVENT_COLUMNS = `e.position, e.tx, e.partition, e.bot_id, e.version, e.event_id, e.type, e.schema_version,
  e.occurred_at, e.correlation_id, e.causation_id, e.actor, e.data::text AS data, e.raw,
  to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS recorded_at`

export interface EventRow {
  readonly position: string
  readonly tx: string
  readonly partition: number
  readonly bot_id: string
  readonly version: number | null
  readonly event_id: string
  readonly type: string
  readonly schema_version: number | null
  readonly occurred_at: string
  readonly correlation_id: string
  readonly causation_id: string | null
  readonly actor: string
  readonly data: string | null
  readonly raw: Record<string, unknown> | null
  /** ISO-8601 (UTC, ms); null only where a LEFT JOIN found no row. */
  readonly recorded_at: string | null
  readonly [column: string]: unknown
}

/**
 * The fields of a row as the Redis adapter would hold them, so decoding (and dead-lettering "as it
 * was") is the same code for every adapter. A foreign row gives back exactly what was written.
 */
export const rowFields = (row: EventRow): RawFields => {
  if (row.raw !== null) {
    return Object.fromEntries(Object.entries(row.raw).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]))
  }
  const fields: EventFields = {
    eventId: row.event_id,
    botId: row.bot_id,
    v: String(row.version),
    type: row.type,
    schemaVersion: String(row.schema_version),
    occurredAt: row.occurred_at,
    correlationId: row.correlation_id,
    causationId: row.causation_id ?? "",
    actor: row.actor,
    data: row.data ?? ""
  }
  return fields
}

export const rowPosition = (row: EventRow): string => formatPosition({ tx: row.tx, seq: row.position })

/** A row as a delivery: a row that does not decode is a Left the consumer can dead-letter. */
export const toDelivery = (row: EventRow, deliveryCount: number): Delivery => {
  const raw = rowFields(row)
  const position = rowPosition(row)
  return {
    partition: row.partition,
    position,
    deliveryCount,
    raw,
    event: Either.map(decodeFields(raw), (env) => withPosition(env, position, row.partition, row.recorded_at ?? undefined))
  }
}
