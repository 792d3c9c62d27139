import { Data, Effect, Either } from "effect"
import type { RedisClient } from "../../health/redisHealth.js"
import type { SqlClient } from "../../db/sql.js"
import type { EventLogService } from "../../events/eventLog.js"
import { partitionOf } from "../../events/partition.js"
import { rewindRedisStream } from "../../events/redisStreamRewind.js"
import type { NewEvent } from "../../events/schema/envelope.js"
import { ARCHIVE_COLUMNS, decodeArchiveRecord } from "../../projections/archiveRecord.js"
import type { ArchiveRecord } from "../../projections/archiveRecord.js"
import { DIVERGED_REASON, HELD_REASON } from "../../projections/divergence.js"
import { BotBusy } from "../import/errors.js"

/*
 * `botfleet divergence resolve <bot>`: the archive's history wins (docs/redis.md). The archive's
 * copies were acknowledged, archived, audited and acted on (replies sent) before Redis lost them;
 * the hot log's copies were decided from a state that had forgotten them. So the bot's hot stream
 * is rewound to just before the first diverged version and the archive's events from there are
 * appended back (same event ids, versions, times): the bot then goes on from the history the
 * archive and the audit chain hold. The hot log's discarded copies stay in the dead letters.
 */

export class NoDivergence extends Data.TaggedError("NoDivergence")<{ readonly botId: string }> {
  override get message() {
    return `bot ${this.botId} has no recorded divergence between its hot log and the archive: nothing to resolve (botfleet status lists them)`
  }
}

export class ResolveFailed extends Data.TaggedError("ResolveFailed")<{ readonly botId: string; readonly stage: string; readonly cause: unknown }> {
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `resolving bot ${this.botId}'s divergence failed while ${this.stage}: ${cause}`
  }
}

export interface ResolveReport {
  readonly botId: string
  /** The first diverged version: the hot log was rewound to the version before it. */
  readonly fromVersion: number
  /** The archive's last version, now the hot log's too. */
  readonly toVersion: number
  /** Hot-log entries removed from the bot's stream (the discarded branch). */
  readonly hotLogEntriesRemoved: number
  /** Archived events appended back. */
  readonly reappended: number
  /** Dead letters holding the discarded branch's events (diverged + held): a record, never to retry. */
  readonly discardedDeadLetters: number
}

/**
 * Resolves a bot's divergence in favour of the archive. Guarantees: nothing is changed unless the
 * bot has a recorded divergence, every archived event from it decodes, and this command takes the
 * bot's lease (a node running the bot: BotBusy, stop it first); then, under that lease and fence:
 * the divergence record is dropped (so the projector stops holding the bot), the stream is rewound
 * and the archive's events are appended back, which the projector recognises as already archived.
 */
export const resolveDivergence = (o: {
  readonly log: EventLogService
  readonly redis: RedisClient
  readonly prefix: string
  readonly sql: SqlClient
  readonly botId: string
  readonly leaseOwner: string
}): Effect.Effect<ResolveReport, NoDivergence | ResolveFailed | BotBusy> =>
  Effect.gen(function* () {
    const { botId } = o
    const db = <A>(stage: string, f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: (cause) => new ResolveFailed({ botId, stage, cause }) })
    const from = (yield* db("reading its divergences", () =>
      o.sql.query<{ v: number | null }>("SELECT min(version) AS v FROM archive_divergences WHERE bot_id = $1", [botId]))).rows[0]?.v ?? null
    if (from === null) return yield* new NoDivergence({ botId })
    const rows = (yield* db("reading the archive", () =>
      o.sql.query<ArchiveRecord & Record<string, unknown>>(`SELECT ${ARCHIVE_COLUMNS} FROM events_archive WHERE bot_id = $1 AND version >= $2 ORDER BY version`, [botId, from]))).rows
    const events: NewEvent[] = []
    for (const [i, r] of rows.entries()) {
      if (r.version !== from + i) return yield* new ResolveFailed({ botId, stage: "reading the archive", cause: new Error(`version ${from + i} is missing from the archive`) })
      const decoded = decodeArchiveRecord(r)
      if (Either.isLeft(decoded)) return yield* new ResolveFailed({ botId, stage: `decoding archived version ${r.version}`, cause: decoded.left })
      const e = decoded.right
      events.push({ data: e.data, eventId: e.eventId, occurredAt: e.occurredAt, correlationId: e.correlationId, causationId: e.causationId, actor: e.actor })
    }
    const failed = (stage: string) => (cause: unknown) => new ResolveFailed({ botId, stage, cause })
    const lease = yield* o.log.acquireLease(botId, o.leaseOwner, 120_000).pipe(Effect.mapError(failed("taking the bot's lease")))
    if (!lease) {
      const holder = yield* o.log.readLease(botId).pipe(Effect.mapError(failed("reading the bot's lease")))
      return yield* new BotBusy({ botId, nodeId: holder?.nodeId ?? "another node" })
    }
    return yield* Effect.gen(function* () {
      yield* db("dropping the divergence record", () => o.sql.query("DELETE FROM archive_divergences WHERE bot_id = $1", [botId]))
      const removed = yield* rewindRedisStream({ redis: o.redis, prefix: o.prefix, partitions: o.log.partitions, botId, keep: from - 1, fence: lease.fence }).pipe(
        Effect.mapError(failed("rewinding the hot stream"))
      )
      let version = from - 1
      for (let i = 0; i < events.length; i += 1000) {
        const chunk = events.slice(i, i + 1000)
        const r = yield* o.log.append({ botId, expectedVersion: version, fence: lease.fence, events: chunk }).pipe(Effect.mapError(failed("appending the archive's events back")))
        version = r.version
      }
      const dead = yield* o.log.readDeadLetters(partitionOf(botId, o.log.partitions)).pipe(Effect.orElseSucceed(() => []))
      const discarded = dead.filter((d) => d.raw["botId"] === botId && (d.reason.startsWith(DIVERGED_REASON) || d.reason.startsWith(HELD_REASON))).length
      return { botId, fromVersion: from, toVersion: version, hotLogEntriesRemoved: removed, reappended: events.length, discardedDeadLetters: discarded }
    }).pipe(Effect.ensuring(Effect.ignore(o.log.releaseLease(lease))))
  })
