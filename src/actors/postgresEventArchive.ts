import { Effect, Either } from "effect"
import type { SqlClient } from "../db/sql.js"
import { ARCHIVE_COLUMNS, decodeArchiveRecord } from "../projections/archiveRecord.js"
import type { ArchiveRecord } from "../projections/archiveRecord.js"
import type { RecordedEvent } from "../events/schema/envelope.js"
import { ArchiveUnavailable } from "./eventArchive.js"
import type { EventArchiveService } from "./eventArchive.js"

/**
 * The archive port over `events_archive` (written by the projector, see docs/projections.md):
 * one indexed range query on the primary key (bot_id, version), decoded with the log's codec.
 */
export const makePostgresEventArchive = (sql: SqlClient): EventArchiveService => ({
  readStream: (botId, from, to) =>
    Effect.tryPromise({
      try: () =>
        sql.query<ArchiveRecord & Record<string, unknown>>(
          `SELECT ${ARCHIVE_COLUMNS} FROM events_archive WHERE bot_id = $1 AND version BETWEEN $2 AND $3 ORDER BY version`,
          [botId, from, to]
        ),
      catch: (cause) => new ArchiveUnavailable({ operation: "readStream", cause })
    }).pipe(
      Effect.flatMap(({ rows }) => {
        const out: RecordedEvent[] = []
        for (const r of rows) {
          const decoded = decodeArchiveRecord(r)
          if (Either.isLeft(decoded)) return Effect.fail(decoded.left)
          out.push(decoded.right)
        }
        return Effect.succeed(out)
      })
    )
})
