import { hostname } from "node:os"
import { Clock, Data, Duration, Effect, Either } from "effect"
import type { AppendError } from "../events/errors.js"
import type { EventLogService } from "../events/eventLog.js"
import type { DomainEvent } from "../events/schema/catalogue.js"
import { FLEET_STREAM } from "../projections/mapping/fleet.js"

/** Another writer held the fleet stream's lease for longer than we waited. */
export class FleetStreamBusy extends Data.TaggedError("FleetStreamBusy")<{ readonly holder: string }> {
  override get message() {
    return `the fleet's event stream is being written by ${this.holder}: run the command again in a moment`
  }
}

/**
 * Appends a fleet event (FLEET_STREAM: events about the fleet, not a bot) as every writer
 * appends: under the stream's lease, fenced, at the version read. Fleet events are rare (ops
 * actions), so a writer that finds the lease held waits a little for it. Resolves with the
 * stream's version after the append.
 */
export const appendFleetEvent = (log: EventLogService, data: DomainEvent, actor: string): Effect.Effect<number, FleetStreamBusy | AppendError> =>
  Effect.gen(function* () {
    const owner = `fleet-writer:${hostname()}:${process.pid}`
    for (let attempt = 0; ; attempt++) {
      const lease = yield* log.acquireLease(FLEET_STREAM, owner, 10_000)
      if (lease === null) {
        if (attempt >= 50) return yield* new FleetStreamBusy({ holder: (yield* log.readLease(FLEET_STREAM))?.nodeId ?? "another writer" })
        yield* Effect.sleep(Duration.millis(100))
        continue
      }
      const result = yield* Effect.gen(function* () {
        const version = yield* log.streamVersion(FLEET_STREAM)
        const now = yield* Clock.currentTimeMillis
        const at = new Date(now).toISOString()
        return yield* Effect.either(
          log.append({ botId: FLEET_STREAM, expectedVersion: version, fence: lease.fence, events: [{ data, occurredAt: at, correlationId: `fleet:${data._tag}:${at}`, actor }] })
        )
      }).pipe(Effect.ensuring(Effect.ignore(log.releaseLease(lease))))
      if (Either.isRight(result)) return result.right.version
      if (result.left._tag !== "WrongExpectedVersion" || attempt >= 50) return yield* result.left
    }
  })
