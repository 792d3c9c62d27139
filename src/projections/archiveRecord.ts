import { Either } from "effect"
import { decodeFields, withPosition } from "../events/codec.js"
import type { InvalidEvent } from "../events/errors.js"
import type { RecordedEvent } from "../events/schema/envelope.js"

/** One row of `events_archive`, as `ARCHIVE_COLUMNS` selects it. */
export interface ArchiveRecord {
  bot_id: string; version: number; owner_id: string; log_partition: number; position: string; event_id: string; type: string
  schema_version: number; occurred_at: string; correlation_id: string; causation_id: string | null; actor: string; data: string
  recorded_at: string | null
}

// occurred_at back as ISO-8601 in UTC, in milliseconds as the log's writers spell it
// (Date#toISOString), so an archived event reads as the hot log returned it; microseconds only
// when the stored instant has them, so it stays exact
export const ARCHIVE_COLUMNS = `bot_id, version, owner_id, log_partition, position, event_id, type, schema_version,
  to_char(occurred_at AT TIME ZONE 'UTC', CASE WHEN extract(microseconds FROM occurred_at)::bigint % 1000 = 0
    THEN 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"' ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' END) AS occurred_at,
  correlation_id, causation_id, actor, data::text AS data,
  to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS recorded_at`

/** The log entry fields an archive row was made from (the archive keeps them as the log stored them). */
export const archiveFields = (r: ArchiveRecord): Record<string, string> => ({
  eventId: r.event_id, botId: r.bot_id, v: String(r.version), type: r.type, schemaVersion: String(r.schema_version),
  occurredAt: r.occurred_at, correlationId: r.correlation_id, causationId: r.causation_id ?? "", actor: r.actor, data: r.data
})

/** Decodes an archive row exactly as the log decodes its entries: same codec, same upcasters. */
export const decodeArchiveRecord = (r: ArchiveRecord): Either.Either<RecordedEvent, InvalidEvent> => {
  const decoded = decodeFields(archiveFields(r))
  return Either.isLeft(decoded) ? Either.left(decoded.left) : Either.right(withPosition(decoded.right, r.position, r.log_partition, r.recorded_at ?? undefined))
}
