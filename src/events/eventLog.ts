import { Context } from "effect"
import type { Effect, Either } from "effect"
import type { AppendError, InvalidEvent, LogUnavailable } from "./errors.js"
import type { NewEvent, RecordedEvent } from "./schema/envelope.js"

/**
 * One append: events for one bot, accepted only if the stream is at `expectedVersion` (0 = empty)
 * and `fence` is the bot's current fencing token. All or nothing.
 */
export interface AppendRequest {
  readonly botId: string
  readonly expectedVersion: number
  readonly fence: number
  readonly events: ReadonlyArray<NewEvent>
}

export interface AppendResult {
  readonly botId: string
  /** The stream version after the append (= version of the last event appended). */
  readonly version: number
  /** Partition-log positions of the appended events, in order. */
  readonly positions: ReadonlyArray<string>
}

export interface ReadStreamOptions {
  /** Forward: first version returned (default 1). Backward: last version returned (default: the end). */
  readonly from?: number
  readonly direction?: "forward" | "backward"
  readonly limit?: number
}

/** Raw fields of a log entry, kept so a poison entry can be dead-lettered as it was. */
export type RawFields = Readonly<Record<string, string>>

/** One entry of the partition log handed to a consumer of a group. */
export interface Delivery {
  readonly partition: number
  readonly position: string
  /** 1 on first delivery; grows with each redelivery (reclaim). */
  readonly deliveryCount: number
  readonly event: Either.Either<RecordedEvent, InvalidEvent>
  readonly raw: RawFields
}

export interface DeadLetter {
  readonly partition: number
  readonly id: string
  readonly group: string
  readonly position: string
  readonly reason: string
  readonly deliveryCount: number
  readonly raw: RawFields
  readonly at: string
}

export interface Lease {
  readonly botId: string
  readonly nodeId: string
  /** Fencing token: strictly increases each time the lease changes hands. */
  readonly fence: number
  readonly expiresAt: number
}

/** Where one consumer group of a partition log stands. Every entry up to `lastDelivered` and below `oldestPending` is acked. */
export interface GroupProgress {
  readonly group: string
  /** The last entry handed to the group (null: none yet). */
  readonly lastDelivered: string | null
  /** Its oldest entry delivered and not acked yet (null: none). */
  readonly oldestPending: string | null
}

export interface ReclaimResult {
  readonly deliveries: ReadonlyArray<Delivery>
  /** Pending entries whose log entry had been trimmed away: acknowledged, never redelivered. */
  readonly trimmedAcked: ReadonlyArray<string>
}

/**
 * The event log port. Adapters: Redis Streams (production), Postgres (embedded and the cold log),
 * memory (unit tests). `test/events/eventLog.contract.ts` holds the assertions every adapter must pass.
 */
export interface EventLogService {
  readonly partitions: number
  readonly partitionOf: (botId: string) => number

  /** Appends atomically, checking version and fence in the same step (one Lua call on Redis). */
  readonly append: (req: AppendRequest) => Effect.Effect<AppendResult, AppendError>
  /** Many appends sent together (pipelined); each succeeds or fails on its own. */
  readonly appendMany: (
    reqs: ReadonlyArray<AppendRequest>
  ) => Effect.Effect<ReadonlyArray<Either.Either<AppendResult, AppendError>>, LogUnavailable>

  readonly readStream: (
    botId: string,
    options?: ReadStreamOptions
  ) => Effect.Effect<ReadonlyArray<RecordedEvent>, LogUnavailable | InvalidEvent>
  /** 0 for a bot with no events. */
  readonly streamVersion: (botId: string) => Effect.Effect<number, LogUnavailable>
  /** Entries of a partition log strictly after `after` (from the start when absent), in order. */
  readonly readPartition: (
    partition: number,
    options?: { readonly after?: string; readonly limit?: number }
  ) => Effect.Effect<ReadonlyArray<Delivery>, LogUnavailable>

  /** Creates the consumer group if missing; `from: "start"` delivers the whole log, `"end"` only new entries. */
  readonly ensureGroup: (partition: number, group: string, from?: "start" | "end") => Effect.Effect<void, LogUnavailable>
  /** New entries for this consumer (at-least-once: pending until acked). */
  readonly readGroup: (args: {
    readonly partition: number
    readonly group: string
    readonly consumer: string
    readonly count: number
    readonly blockMs?: number
  }) => Effect.Effect<ReadonlyArray<Delivery>, LogUnavailable>
  readonly ack: (partition: number, group: string, positions: ReadonlyArray<string>) => Effect.Effect<void, LogUnavailable>
  /** Takes over entries other consumers left pending longer than `minIdleMs` (XAUTOCLAIM). */
  readonly reclaim: (args: {
    readonly partition: number
    readonly group: string
    readonly consumer: string
    readonly minIdleMs: number
    readonly count: number
  }) => Effect.Effect<ReclaimResult, LogUnavailable>
  /** Number of entries delivered to the group and not yet acked. */
  readonly pendingCount: (partition: number, group: string) => Effect.Effect<number, LogUnavailable>
  /** Every consumer group of the partition log with its cursor and oldest pending entry (the trimmer's bound). */
  readonly groupProgress: (partition: number) => Effect.Effect<ReadonlyArray<GroupProgress>, LogUnavailable>
  /** Moves an entry to the partition's dead-letter stream with the reason, and acks it. */
  readonly deadLetter: (args: {
    readonly group: string
    readonly delivery: Delivery
    readonly reason: string
  }) => Effect.Effect<void, LogUnavailable>
  readonly readDeadLetters: (partition: number) => Effect.Effect<ReadonlyArray<DeadLetter>, LogUnavailable>

  /**
   * Removes partition-log entries strictly below `below`; the caller vouches they are archived and
   * acked by every group, and trims the streams of their bots (trimStream) as far as it wants them
   * gone too. An adapter keeping a bot's event as one entry of both its stream and its partition
   * log (Postgres) removes here only entries in no stream (foreign ones); the rest goes with
   * trimStream, so a bot's hot window is never cut by a partition trim. Returns the entries removed.
   */
  readonly trimPartition: (partition: number, below: string) => Effect.Effect<number, LogUnavailable>
  /** Removes a bot's stream entries with version < `belowVersion`; the caller vouches they are archived and snapshotted. The version is kept. */
  readonly trimStream: (botId: string, belowVersion: number) => Effect.Effect<number, LogUnavailable>

  /** Takes the lease if free or expired (or already ours): a new holder gets a higher fence. */
  readonly acquireLease: (botId: string, nodeId: string, ttlMs: number) => Effect.Effect<Lease | null, LogUnavailable>
  /** Extends our lease; null if it is no longer ours (expired and taken, or released). */
  readonly renewLease: (lease: Lease, ttlMs: number) => Effect.Effect<Lease | null, LogUnavailable>
  readonly releaseLease: (lease: Lease) => Effect.Effect<boolean, LogUnavailable>
  readonly readLease: (botId: string) => Effect.Effect<Lease | null, LogUnavailable>

  /** Releases connections. */
  readonly close: Effect.Effect<void>
}

export class EventLog extends Context.Tag("botfleet/EventLog")<EventLog, EventLogService>() {}
