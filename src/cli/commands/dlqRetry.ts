import { storesFor } from "../hosted.js"
import { Command } from "commander"
import type { RedisClient } from "../../health/redisHealth.js"
import { Data, Effect, Option, Redacted } from "effect"
import { AppConfig } from "../../config.js"
import type { SqlClient } from "../../db/sql.js"
import type { DeadLetter, EventLogService } from "../../events/eventLog.js"
import { redisKeys } from "../../events/partition.js"
import { makeRedisEventLog } from "../../events/redisEventLog.js"
import { openRedis } from "../../health/redisHealth.js"
import { parsePosition } from "../../events/postgresPosition.js"
import { printJson, printTable } from "../io.js"
import type { CliIo } from "../io.js"
import { runCommand, UsageError } from "../runtime.js"
import { asSubcommand } from "./botsCommand.js"
import { resolveBotRef } from "../bots/botRef.js"
import { checkEntryId, openInboxStores, printInboxRetried, retryInboxDeadLetters } from "./dlqInbox.js"

type SetExit = (code: number) => void

/*
 * `botfleet dlq retry`: gives dead-lettered log entries another chance, then removes them from the
 * dead-letter list, each in one atomic step (a retried entry is never both retried and still listed).
 * - Redis log: the entry is put back into the pending list of the group that gave up on it
 *   (XCLAIM ... FORCE creates a pending entry for an acked one still in the stream), idle since
 *   the epoch with no delivery yet, so that group's next reclaim redelivers it, at its own
 *   position; the other groups, which handled it, never see it again. Like the Postgres log.
 * - Postgres log (embedded): the partition log is the events table itself, so the entry is not
 *   copied; it is put back among the pending entries of the group that gave up on it, idle, and
 *   that group's next reclaim redelivers it (delivery count from zero).
 */

export class DeadLetterNotFound extends Data.TaggedError("DeadLetterNotFound")<{ readonly partition: number; readonly id: string }> {
  override get message() {
    return `no dead-letter entry ${this.id} on partition ${this.partition}: list them with botfleet dlq list`
  }
}

export class CannotRetry extends Data.TaggedError("CannotRetry")<{ readonly id: string; readonly reason: string }> {
  override get message() {
    return `dead-letter entry ${this.id} cannot be retried: ${this.reason}`
  }
}

export class RetryFailed extends Data.TaggedError("RetryFailed")<{ readonly id: string; readonly cause: unknown }> {
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `retrying dead-letter entry ${this.id} failed: ${cause}`
  }
}

/*
 * KEYS: partition log, dead-letter stream. ARGV: group, position, dead-letter id, idle ms.
 * Nothing happens unless the entry is still in the log (not trimmed) and the dead letter still
 * listed (a concurrent retry took it): returns 1 when moved, 0 when trimmed, -1 when gone.
 */
const RETRY_IN_GROUP = `
if #redis.call('XRANGE', KEYS[2], ARGV[3], ARGV[3]) == 0 then return -1 end
if #redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2]) == 0 then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], 'dlq-retry', 0, ARGV[2], 'IDLE', ARGV[4], 'RETRYCOUNT', 0, 'FORCE', 'JUSTID')
redis.call('XDEL', KEYS[2], ARGV[3])
return 1
`

/** Redelivers a dead letter of the Redis log (RETRY_IN_GROUP); shared with the REST API. */
export const retryOnRedis = (redis: RedisClient, prefix: string, d: DeadLetter) =>
  Effect.gen(function* () {
    const k = redisKeys(prefix, d.partition)
    const moved = yield* Effect.tryPromise({
      // idle since the epoch: older than any reclaim threshold, as the Postgres log does it
      try: () => redis.eval(RETRY_IN_GROUP, 2, k.log, k.deadLetter, d.group, d.position, d.id, Date.now()),
      catch: (cause) => new RetryFailed({ id: d.id, cause })
    })
    if (moved === 0) return yield* new CannotRetry({ id: d.id, reason: "its log entry has been trimmed (archived) since" })
    if (moved === -1) return yield* new DeadLetterNotFound({ partition: d.partition, id: d.id })
  })

/** Redelivers a dead letter of the Postgres log; shared with the REST API. */
export const retryOnPostgres = (sql: SqlClient, d: DeadLetter) =>
  Effect.gen(function* () {
    const seq = parsePosition(d.position).seq
    const moved = yield* Effect.tryPromise({
      try: () =>
        sql.transaction(async (tx) => {
          const exists = await tx.query<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE position = $1::bigint AND partition = $2", [seq, d.partition])
          if ((exists.rows[0]?.n ?? 0) === 0) return false
          await tx.query(
            `INSERT INTO pending (grp, partition, position, tx, bot_id, consumer, delivered_at, delivery_count)
             SELECT $1, $2, e.position, e.tx, e.bot_id, 'dlq-retry', 'epoch'::timestamptz, 0
             FROM events e WHERE e.position = $3::bigint AND e.partition = $2
             ON CONFLICT (grp, partition, position) DO NOTHING`,
            [d.group, d.partition, seq]
          )
          await tx.query("DELETE FROM dead_letters WHERE id = $1::bigint AND partition = $2", [d.id, d.partition])
          return true
        }),
      catch: (cause) => new RetryFailed({ id: d.id, cause })
    })
    if (!moved) return yield* new CannotRetry({ id: d.id, reason: "its log entry has been trimmed (archived) since" })
  })

const retryInbox = (io: CliIo, ref: string, entryId: string | undefined, extra: string | undefined, opts: { all?: boolean; json?: boolean }) =>
  Effect.scoped(
    Effect.gen(function* () {
      if (extra !== undefined) return yield* new UsageError({ detail: `with --bot, give one inbox entry id (got also ${JSON.stringify(extra)})` })
      if ((entryId === undefined) === (opts.all !== true)) return yield* new UsageError({ detail: "with --bot, give either an inbox entry id or --all" })
      const chosen = entryId === undefined ? null : yield* checkEntryId(entryId)
      const stores = yield* openInboxStores(yield* AppConfig)
      const botId = yield* resolveBotRef(stores, ref)
      const done = yield* retryInboxDeadLetters({ ...stores, botId, entryId: chosen })
      printInboxRetried(io, botId, done, opts.json === true)
    })
  )

/**
 * `botfleet dlq retry <partition> [id] [--all] [--json]` (log dead letters), or
 * `botfleet dlq retry --bot <bot> [entry-id] [--all] [--json]` (the bot's inbox dead letters).
 */
export const dlqRetryCommand = (io: CliIo, setExit: SetExit): Command =>
  asSubcommand(
    io,
    new Command("retry")
      .description(
        "redeliver dead-letter entries of a partition (one by id, or --all), or with --bot re-enqueue a bot's inbox dead letters (one by entry id, or --all), and remove them from the dead-letter list"
      )
      .argument("[partition]", "the partition (botfleet dlq list shows it); with --bot: the inbox entry id (botfleet dlq list --bot shows it)")
      .argument("[id]", "the dead-letter entry's id")
      .option("--bot <bot>", "retry the bot's inbox dead letters (updates its handler threw on) instead of log dead letters")
      .option("--all", "every dead-letter entry of the partition (with --bot: of the bot)")
      .option("--json", "print what was retried as JSON")
      .action(async (first: string | undefined, second: string | undefined, opts: { bot?: string; all?: boolean; json?: boolean }) => {
        if (opts.bot !== undefined) return setExit(await runCommand(retryInbox(io, opts.bot, first, second, opts), undefined, { env: io.env, stderr: io.stderr }))
        const partitionText = first
        const id = second
        const program = Effect.scoped(
          Effect.gen(function* () {
            if (partitionText === undefined) return yield* new UsageError({ detail: "give a partition (or --bot <bot> for a bot's inbox dead letters)" })
            if ((id === undefined) === (opts.all !== true)) return yield* new UsageError({ detail: "give either a dead-letter id or --all" })
            const config = yield* AppConfig
            const partition = Number(partitionText)
            if (!Number.isInteger(partition) || partition < 0 || partition >= config.partitions) {
              return yield* new UsageError({ detail: `partition ${JSON.stringify(partitionText)}: expected a whole number from 0 to ${config.partitions - 1}` })
            }
            let log: EventLogService
            let retry: (d: DeadLetter) => Effect.Effect<void, CannotRetry | RetryFailed | DeadLetterNotFound>
            if (Option.isSome(config.redisUrl)) {
              const url = Redacted.value(config.redisUrl.value)
              log = yield* Effect.acquireRelease(makeRedisEventLog({ url, prefix: config.redisPrefix, partitions: config.partitions }), (l) => l.close)
              const redis = yield* Effect.acquireRelease(
                Effect.tryPromise({
                  try: async () => {
                    const r = openRedis(url, "cli", { maxRetriesPerRequest: 2, lazyConnect: true })
                    await r.connect()
                    return r
                  },
                  catch: (cause) => new RetryFailed({ id: id ?? "(all)", cause })
                }),
                (r) => Effect.promise(() => r.quit().catch(() => undefined))
              )
              retry = (d) => retryOnRedis(redis, config.redisPrefix, d)
            } else {
              const s = yield* storesFor(io, config)
              log = s.log
              retry = (d) => retryOnPostgres(s.sql, d)
            }
            const all = yield* log.readDeadLetters(partition)
            const chosen = opts.all ? all : all.filter((d) => d.id === id)
            if (!opts.all && chosen.length === 0) return yield* new DeadLetterNotFound({ partition, id: id! })
            for (const d of chosen) yield* retry(d)
            const done = chosen.map((d) => ({ partition: d.partition, id: d.id, group: d.group, position: d.position }))
            if (opts.json) return printJson(io, { retried: done })
            if (done.length === 0) return io.stdout(`no dead-letter entries on partition ${partition}`)
            printTable(io, done)
            io.stdout(`retried ${done.length} dead-letter entr${done.length === 1 ? "y" : "ies"}`)
          })
        )
        setExit(await runCommand(program, undefined, { env: io.env, stderr: io.stderr }))
      })
  )
