import { Clock, Data, Duration, Effect, Either } from "effect"
import type { ArchiveUnavailable } from "../actors/eventArchive.js"
import type { LogUnavailable } from "../events/errors.js"
import type { Delivery, EventLogService, Lease } from "../events/eventLog.js"
import { botsOfCut, nextPosition, partitionCut, streamTrimBelow } from "./plan.pure.js"
import type { Hold, TrimEntry } from "./plan.pure.js"
import type { TrimLedger } from "./trimLedger.js"

/**
 * The archive lacks events the watermarks say it holds: the trimmer removes nothing of the batch.
 * Not an outage (waiting changes nothing): someone must look at the archive (docs/redis.md).
 */
export class TrimRefused extends Data.TaggedError("TrimRefused")<{
  readonly partition: number
  readonly reason: "ArchiveMissingEvents"
  readonly expected: number
  readonly found: number
  readonly from: string
  readonly to: string
}> {
  override get message() {
    return (
      `partition ${this.partition}: refusing to trim entries ${this.from}..${this.to}: the archive holds ${this.found} of their ` +
      `${this.expected} events although its watermarks cover them all; nothing was removed`
    )
  }
}

/** One bot stream to trim: versions from..below-1 (from: its first version still in the hot log). */
export interface StreamTrim {
  readonly botId: string
  readonly from: number
  readonly below: number
}

/** What one batch is about to remove, once the archive has been checked (the `beforeTrim` hook sees it). */
export interface TrimBatchPlan {
  readonly partition: number
  readonly entries: ReadonlyArray<TrimEntry>
  readonly streams: ReadonlyArray<StreamTrim>
}

export interface PartitionTrimReport {
  readonly partition: number
  /** False: another node's trimmer holds this partition's lease; nothing was done. */
  readonly owned: boolean
  readonly batches: number
  /** Partition-log entries handled (their bots' streams trimmed as far as allowed, then the entries removed). */
  readonly entries: number
  /** Entries the log reported removed: partition log, bot streams. */
  readonly removedFromPartition: number
  readonly removedFromStreams: number
  /** Bot streams trimmed. */
  readonly streams: number
  /** Where the partition log must stay (null: trimmed to its end, or stopped at maxBatches). */
  readonly held: Hold | null
  /** Streams left alone because the archive lacks versions its watermark covers (never trimmed). */
  readonly refusedStreams: ReadonlyArray<StreamTrim & { readonly archived: number }>
  /** The run stopped at `maxBatches` with more to do. */
  readonly more: boolean
}

export interface TrimmerOptions {
  /** The hot log itself (not read through to the archive). */
  readonly log: EventLogService
  readonly ledger: TrimLedger
  /** The bot's latest snapshot version (0: none): its stream keeps what is above. */
  readonly snapshotVersion: (botId: string) => Effect.Effect<number, unknown>
  /** Who holds the partitions' trimmer leases. */
  readonly nodeId: string
  /** HOT_LOG_EVENTS: newest events of each stream kept, whatever else allows. */
  readonly hotEvents: number
  /** HOT_LOG_MAX_AGE: partition-log entries recorded more recently stay. */
  readonly maxAgeMs: number
  /** Partition-log entries read per batch (default 1000). */
  readonly batchSize?: number
  /** Batches per partition per run (default 20): a run's work is bounded, a backlog drains over runs. */
  readonly maxBatches?: number
  /** The trimmer lease's time to live (default 60 s). */
  readonly leaseTtlMs?: number
  /** Test hook: runs after every check of a batch, right before anything is removed. */
  readonly beforeTrim?: (plan: TrimBatchPlan) => Effect.Effect<void>
}

/** A partition's trimmer lease: the log's bot leases under a name no bot id can take (ids have no ':'). */
export const trimmerLeaseName = (partition: number): string => `trimmer:p${String(partition).padStart(2, "0")}`

const toEntry = (d: Delivery): TrimEntry => {
  if (Either.isLeft(d.event)) {
    // an entry that does not decode is never archived: the projectors dead-letter it (its raw copy
    // is in the dead-letter stream), so once every group acked it the partition log may let it go;
    // if it is a version of a stream, that stream keeps it (its watermark stays below it)
    return { position: d.position, recordedAtMs: undefined, event: null }
  }
  const e = d.event.right
  const t = e.recordedAt === undefined ? Number.NaN : Date.parse(e.recordedAt)
  return { position: d.position, recordedAtMs: Number.isNaN(t) ? undefined : t, event: { botId: e.botId, version: e.version, eventId: e.eventId } }
}

/**
 * The hot-log trimmer of one node (docs/redis.md "Trimming"). `trimPartition` trims one
 * partition, only while this node holds the partition's trimmer lease:
 *
 * 1. reads the partition log after its cursor (where the last run got to), a batch at a time;
 * 2. keeps the prefix every consumer group acknowledged, recorded before HOT_LOG_MAX_AGE, and
 *    (events of bot streams) covered by the bots' archive watermarks;
 * 3. checks that the archive holds exactly those events (bot, version, event id) — or refuses the
 *    batch (TrimRefused) and removes nothing;
 * 4. for each bot in the prefix, trims its stream below the smallest of: its version after the
 *    prefix, its snapshot + 1, its watermark + 1, its version − HOT_LOG_EVENTS + 1; after a count
 *    check of the very range it removes (a bot whose count disagrees keeps its stream);
 * 5. then removes the prefix from the partition log and moves the cursor past it.
 *
 * Why a crash anywhere is harmless: nothing is removed before every check of the batch passed;
 * streams go before the partition entries that name their bots, so a crash in between leaves the
 * entries for the next run to find the same bots again; each trim removes only what is below a
 * bound, so doing it twice removes nothing more. Two trimmers of the same partition (a lease that
 * expired during a long pause) are as harmless: each checks before it removes. The lease only
 * saves the work being done twice.
 */
export const makeTrimmer = (o: TrimmerOptions) => {
  const batchSize = o.batchSize ?? 1000
  const maxBatches = o.maxBatches ?? 20
  const leaseTtlMs = o.leaseTtlMs ?? 60_000
  const held = new Map<number, Lease>()

  const takeLease = (partition: number) =>
    Effect.tap(o.log.acquireLease(trimmerLeaseName(partition), o.nodeId, leaseTtlMs), (l) =>
      Effect.sync(() => (l === null ? held.delete(partition) : held.set(partition, l)))
    )

  /** The stream trim of one bot of a cut, or null when its stream keeps everything it has. */
  const planStream = (botId: string, highestInCut: number, watermark: number) =>
    Effect.gen(function* () {
      const [snapshotVersion, streamVersion, first] = yield* Effect.all(
        [
          // no snapshot known (or its store is down): the stream keeps everything, hydration needs it
          o.snapshotVersion(botId).pipe(Effect.orElseSucceed(() => 0)),
          o.log.streamVersion(botId),
          o.log.readStream(botId, { limit: 1 }).pipe(Effect.catchTag("InvalidEvent", () => Effect.succeed(null)))
        ],
        { concurrency: 3 }
      )
      const from = first?.[0]?.version
      if (from === undefined) return null
      const below = streamTrimBelow({ highestInCut, snapshotVersion, watermark, streamVersion, hotEvents: o.hotEvents })
      return below > from ? ({ botId, from, below } satisfies StreamTrim) : null
    })

  const trimPartition = (partition: number): Effect.Effect<PartitionTrimReport, LogUnavailable | ArchiveUnavailable | TrimRefused> =>
    Effect.gen(function* () {
      const report = {
        partition, owned: true, batches: 0, entries: 0, removedFromPartition: 0, removedFromStreams: 0, streams: 0,
        held: null as Hold | null, refusedStreams: [] as Array<StreamTrim & { archived: number }>, more: false
      }
      if ((yield* takeLease(partition)) === null) return { ...report, owned: false }
      const groups = yield* o.log.groupProgress(partition)
      let after = yield* o.ledger.cursor(partition)
      for (;;) {
        if (report.batches >= maxBatches) {
          report.more = true
          break
        }
        const read = yield* o.log.readPartition(partition, after === null ? { limit: batchSize } : { after, limit: batchSize })
        if (read.length === 0) break
        report.batches++
        const entries = read.map(toEntry)
        const bots = [...new Set(entries.flatMap((e) => (e.event ? [e.event.botId] : [])))]
        const watermarks = yield* o.ledger.watermarks(bots)
        const cut = partitionCut({ entries, groups, watermarks, nowMs: yield* Clock.currentTimeMillis, maxAgeMs: o.maxAgeMs })
        report.held = cut.held
        if (cut.entries.length === 0) break

        // verify, do not assume: the archive holds these very events
        const events = cut.entries.flatMap((e) => (e.event ? [e.event] : []))
        const found = yield* o.ledger.countArchived(events)
        if (found !== events.length) {
          return yield* new TrimRefused({
            partition, reason: "ArchiveMissingEvents", expected: events.length, found,
            from: cut.entries[0]!.position, to: cut.entries[cut.entries.length - 1]!.position
          })
        }
        const planned = yield* Effect.forEach(
          botsOfCut(cut.entries),
          ([botId, highest]) => planStream(botId, highest, watermarks.get(botId) ?? 0),
          { concurrency: 8 }
        )
        const wanted = planned.filter((s): s is StreamTrim => s !== null)
        const counts = yield* o.ledger.countRanges(wanted)
        const streams: StreamTrim[] = []
        for (const s of wanted) {
          const archived = counts.get(s.botId) ?? 0
          if (archived === s.below - s.from) streams.push(s)
          else report.refusedStreams.push({ ...s, archived })
        }

        if (o.beforeTrim) yield* o.beforeTrim({ partition, entries: cut.entries, streams })
        const removed = yield* Effect.forEach(streams, (s) => o.log.trimStream(s.botId, s.below), { concurrency: 8 })
        const last = cut.entries[cut.entries.length - 1]!.position
        report.removedFromPartition += yield* o.log.trimPartition(partition, nextPosition(last))
        yield* o.ledger.saveCursor(partition, last)
        after = last
        report.entries += cut.entries.length
        report.removedFromStreams += removed.reduce((a, b) => a + b, 0)
        report.streams += streams.length
        if (cut.held !== null) break
        // still ours? (renewed as we go: a long backlog must not outlive the lease)
        if ((yield* takeLease(partition)) === null) break
      }
      return report
    })

  /** Hands back the leases this trimmer holds (at shutdown: another node's trimmer takes over at once). */
  const release = Effect.suspend(() => Effect.forEach([...held.values()], (l) => Effect.ignore(o.log.releaseLease(l)), { discard: true })).pipe(
    Effect.zipRight(Effect.sync(() => held.clear()))
  )

  return { trimPartition, release }
}

export type Trimmer = ReturnType<typeof makeTrimmer>

/** What a run did, as one log line's annotations. */
const describe = (r: PartitionTrimReport) => ({
  partition: r.partition, entries: r.entries, removedFromPartition: r.removedFromPartition, removedFromStreams: r.removedFromStreams,
  streams: r.streams, held: r.held?.reason ?? null, more: r.more
})

/**
 * Runs a node's trimmer until interrupted: every `interval`, each partition in turn (one at a
 * time, so the work of a run is one partition's batches after another's). A partition that stopped
 * with more to do brings the next round forward (1 s), so a backlog drains without one run growing.
 * Failures are logged and the partition is tried again next round. The leases go back at the end.
 */
export const runTrimmer = (
  o: TrimmerOptions & {
    readonly interval: Duration.DurationInput
    readonly partitions?: ReadonlyArray<number>
    /** After each round, with the entries it removed (streams and partition logs): e.g. to vacuum. */
    readonly afterRound?: (removed: number) => Effect.Effect<void>
  }
): Effect.Effect<never> => {
  const trimmer = makeTrimmer(o)
  const partitions = o.partitions ?? Array.from({ length: o.log.partitions }, (_, p) => p)
  const one = (partition: number) =>
    trimmer.trimPartition(partition).pipe(
      Effect.tap((r) => {
        const notes: Array<Effect.Effect<void>> = []
        if (r.removedFromPartition + r.removedFromStreams > 0) notes.push(Effect.logDebug("hot log trimmed"))
        if (r.held?.reason === "NotArchived") {
          notes.push(
            Effect.logWarning(
              `hot log of partition ${partition} held at ${r.held.position}: bot ${r.held.botId} version ${r.held.version} is acked by ` +
                "every consumer group but not archived (dead-lettered? see botfleet dlq list); nothing after it is trimmed until it is"
            )
          )
        }
        for (const s of r.refusedStreams) {
          notes.push(
            Effect.logWarning(
              `bot ${s.botId}: stream not trimmed: the archive holds ${s.archived} of versions ${s.from}..${s.below - 1} although its watermark covers them`
            )
          )
        }
        return Effect.all(notes, { discard: true }).pipe(Effect.annotateLogs(describe(r)))
      }),
      Effect.map((r) => ({ more: r.more, removed: r.removedFromPartition + r.removedFromStreams })),
      Effect.catchAll((e) => Effect.logWarning(`hot log trimmer of partition ${partition}: ${e.message}`).pipe(Effect.as({ more: false, removed: 0 })))
    )
  const round = Effect.forEach(partitions, one).pipe(
    Effect.tap((rs) => (o.afterRound ? o.afterRound(rs.reduce((a, r) => a + r.removed, 0)) : Effect.void)),
    Effect.map((rs) => rs.some((r) => r.more))
  )
  return Effect.gen(function* () {
    let wait: Duration.DurationInput = o.interval
    for (;;) {
      yield* Effect.sleep(wait)
      wait = (yield* round) ? Duration.seconds(1) : o.interval
    }
  }).pipe(Effect.ensuring(trimmer.release))
}
