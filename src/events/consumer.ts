import { Duration, Effect, Either, Schedule } from "effect"
import type { LogUnavailable } from "./errors.js"
import type { Delivery, EventLogService } from "./eventLog.js"
import type { RecordedEvent } from "./schema/envelope.js"

export interface ConsumerOptions<E> {
  readonly log: EventLogService
  readonly partition: number
  readonly group: string
  readonly consumer: string
  readonly handle: (event: RecordedEvent) => Effect.Effect<void, E>
  readonly batchSize?: number
  /** After this many failed deliveries an entry goes to the dead-letter stream. */
  readonly maxDeliveries?: number
  /** How long an entry stays pending (with a dead or failing consumer) before it is delivered again. */
  readonly reclaimIdleMs?: number
  readonly blockMs?: number
  readonly describeError?: (e: E) => string
  /** First pause after the log was unreachable (default 100 ms); doubled per failure, jittered... */
  readonly backoffBaseMs?: number
  /** ...up to this (default 5 s). */
  readonly backoffMaxMs?: number
}

export interface PollResult {
  readonly handled: number
  readonly failed: number
  readonly deadLettered: number
  readonly trimmedAcked: number
}

const describe = (e: unknown): string =>
  e instanceof Error ? `${e.name}: ${e.message}` : typeof e === "object" && e !== null && "_tag" in e ? JSON.stringify(e) : String(e)

/**
 * One round of a competing consumer: first entries other consumers left pending too long, then
 * new ones. At-least-once: an entry is acked only after `handle` succeeded. A failing entry stays
 * pending and comes back after `reclaimIdleMs` (a natural backoff); once it has failed
 * `maxDeliveries` times, or at once if it does not decode, it goes to the dead-letter stream with
 * the reason and the consumer goes on.
 */
export const pollOnce = <E>(opts: ConsumerOptions<E>): Effect.Effect<PollResult, LogUnavailable> =>
  Effect.gen(function* () {
    const { log, partition, group, consumer } = opts
    const count = opts.batchSize ?? 100
    const maxDeliveries = opts.maxDeliveries ?? 5
    const reclaimed = yield* log.reclaim({ partition, group, consumer, minIdleMs: opts.reclaimIdleMs ?? 30_000, count })
    const fresh = yield* log.readGroup({
      partition,
      group,
      consumer,
      count,
      ...(reclaimed.deliveries.length === 0 && opts.blockMs ? { blockMs: opts.blockMs } : {})
    })
    let handled = 0
    let failed = 0
    let deadLettered = 0
    const process = (d: Delivery) =>
      Effect.gen(function* () {
        if (Either.isLeft(d.event)) {
          yield* log.deadLetter({ group, delivery: d, reason: d.event.left.message })
          deadLettered++
          return
        }
        const outcome = yield* Effect.either(opts.handle(d.event.right))
        if (Either.isRight(outcome)) {
          yield* log.ack(partition, group, [d.position])
          handled++
        } else if (d.deliveryCount >= maxDeliveries) {
          const why = opts.describeError ? opts.describeError(outcome.left) : describe(outcome.left)
          yield* log.deadLetter({ group, delivery: d, reason: `failed ${d.deliveryCount} times: ${why}` })
          deadLettered++
        } else {
          failed++
        }
      })
    for (const d of [...reclaimed.deliveries, ...fresh]) yield* process(d)
    return { handled, failed, deadLettered, trimmedAcked: reclaimed.trimmedAcked.length }
  })

/**
 * Runs `pollOnce` forever, pausing briefly when there was nothing to do. An unreachable log
 * (LogUnavailable: Redis failing over, Postgres restarting) is an outage to wait out, not an end:
 * the failing step is tried again after exponential, jittered, capped delays, and the next outage
 * starts from the first delay again. So it ends only when interrupted.
 */
export const runConsumer = <E>(opts: ConsumerOptions<E>): Effect.Effect<never> => {
  const backoff = Schedule.exponential(Duration.millis(opts.backoffBaseMs ?? 100), 2).pipe(
    Schedule.jittered,
    Schedule.modifyDelay((d) => Duration.min(d, Duration.millis(opts.backoffMaxMs ?? 5_000)))
  )
  const outlast = <A>(step: Effect.Effect<A, LogUnavailable>) =>
    step.pipe(
      Effect.tapError((e) => Effect.logWarning(`consumer ${opts.group}/${opts.consumer} on partition ${opts.partition}: ${e.message}; retrying`)),
      // the schedule never ends, so the fallback is unreachable: it only narrows the error type
      Effect.retryOrElse(backoff, (e) => Effect.die(e))
    )
  return Effect.gen(function* () {
    yield* outlast(opts.log.ensureGroup(opts.partition, opts.group, "start"))
    return yield* outlast(
      pollOnce({ blockMs: 200, ...opts }).pipe(Effect.tap((r) => (r.handled + r.failed + r.deadLettered === 0 ? Effect.sleep("20 millis") : Effect.void)))
    ).pipe(Effect.forever)
  })
}
