import { Effect, Either } from "effect"
import type { AppendRequest, EventLogService } from "../src/events/eventLog.js"
import type { NewEvent } from "../src/events/schema/envelope.js"
import { newEvent, updateReceived } from "../test/support/events.js"

/*
 * The append workload the Redis and the Redis Cluster log benchmarks share: each bot appends
 * EVENTS_PER_APPEND events per round, in batches of APPENDS_PER_BATCH appends, IN_FLIGHT batches
 * at once.
 */

export const EVENTS_PER_APPEND = 4
export const APPENDS_PER_BATCH = 100
export const IN_FLIGHT = 8

/** A typical ~300-byte text update, the same payload the other log benchmark writes. */
export const update = (n: number): NewEvent => newEvent(updateReceived(n), { correlationId: `corr-${n}` })

/** Runs `work` over `batches`, keeping `IN_FLIGHT` of them running at once. */
export const inFlight = async <A>(batches: ReadonlyArray<A>, work: (batch: A) => Promise<void>) => {
  let next = 0
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < batches.length) await work(batches[next++]!)
    })
  )
}


export const chunk = <A>(xs: ReadonlyArray<A>, n: number): A[][] => {
  const out: A[][] = []
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n))
  return out
}

/** Appends ROUNDS rounds of one append per bot; returns the number of events written. */
export const appendRounds = async (log: EventLogService, bots: ReadonlyArray<string>, fences: ReadonlyArray<number>, firstRound: number, rounds: number) => {
  const versions = bots.map(() => firstRound * EVENTS_PER_APPEND)
  // the payloads exist before the log sees them (an actor made them); validating and encoding them
  // is the adapter's work and is measured
  const payloads = Array.from({ length: EVENTS_PER_APPEND }, (_, k) => update(k + 1))
  let events = 0
  for (let round = firstRound; round < firstRound + rounds; round++) {
    // one append per bot per round: a bot's next append waits for its previous one, as an actor's would
    const reqs: AppendRequest[] = bots.map((botId, i) => ({
      botId,
      expectedVersion: versions[i]!,
      fence: fences[i]!,
      events: payloads
    }))
    await inFlight(chunk(reqs, APPENDS_PER_BATCH), async (batch) => {
      const results = await Effect.runPromise(log.appendMany(batch))
      for (const r of results) {
        if (Either.isLeft(r)) throw new Error(`append failed: ${r.left.message}`)
      }
    })
    bots.forEach((_, i) => (versions[i] = versions[i]! + EVENTS_PER_APPEND))
    events += bots.length * EVENTS_PER_APPEND
  }
  return events
}
