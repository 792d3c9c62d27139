import { Effect, Either } from "effect"
import type { EventLogService } from "../events/eventLog.js"
import type { DomainEvent } from "../events/schema/catalogue.js"
import { abandonPendingCalls, executeIntents } from "./recordedCalls.js"
import type { Intent } from "./recordedCalls.js"
import type { CallFn, Sender } from "./sender.js"

/**
 * Executes a bot's recorded Bot API intents, beside its actor, on the node holding its lease.
 *
 * It tails the bot's stream. At start it folds the stream and records `BotApiCallOutcomeUnknown`
 * for every intent without an outcome: those were left by a previous holder that stopped between
 * intent and result, and are never sent again. Start it BEFORE the bot's actor, so every intent it
 * meets later is new. From then on each new intent is sent (outbox sender: limits, 429 retries,
 * no duplicating retries) and its outcome appended with the lease's fence.
 *
 * Its appends race the actor's: both check the expected version, so neither overwrites the other.
 * The actor, refused with WrongExpectedVersion, catches up and decides again from a state that
 * now includes the outcomes (a user who blocked the bot is then never messaged again).
 */
export interface OutboxRunnerOptions {
  readonly log: EventLogService
  readonly botId: string
  /** The fencing token of the lease this node holds for the bot. */
  readonly fence: number
  readonly sender: Sender
  readonly call: CallFn
  /** Pause between stream reads when idle; reads come back-to-back while there is work. */
  readonly idlePollMs?: number
  readonly onError?: (e: unknown) => void
  /** Telegram refused the token (401, revoked): the bot must stop rather than keep failing. */
  readonly onUnauthorized?: () => void
}

export interface OutboxRunner {
  /** Tells the runner new intents were appended (saves waiting for the next idle read). */
  readonly wake: () => void
  /** Stops after every intent recorded so far is sent and its outcome recorded. */
  readonly stop: () => Promise<void>
  /** Outcomes recorded so far (for tests and metrics). */
  readonly recorded: () => number
}

const run = <A, E>(e: Effect.Effect<A, E>) => Effect.runPromise(e)

export const startOutboxRunner = async (o: OutboxRunnerOptions): Promise<OutboxRunner> => {
  let version = 0
  const pending = new Map<string, Intent>()
  const done = new Set<string>()
  let stopped = false
  let recorded = 0
  let woken = false
  let wakeUp: (() => void) | null = null
  const wake = () => {
    woken = true
    wakeUp?.()
  }
  /** Sleeps until woken or `ms` passed; a wake that came while working is not lost. */
  const nap = (ms: number) =>
    woken
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          const timer = setTimeout(done, ms)
          function done() {
            clearTimeout(timer)
            wakeUp = null
            resolve()
          }
          wakeUp = done
        })

  /**
   * Set once the stream shows a later holder's BotStarted. A new holder records BotStarted before
   * any intent of its own, so this runner sees it before it could see (and send) one of those
   * intents: a node that lost the bot never sends what the new holder decided, nor its own
   * unsent intents (the new holder closes those out as outcome unknown).
   */
  let superseded = false
  const fold = (e: DomainEvent) => {
    if (e._tag === "BotStarted" && e.fence > o.fence) {
      superseded = true
      pending.clear()
    } else if (e._tag === "BotApiCallIntended") {
      if (!done.has(e.callId) && !superseded) pending.set(e.callId, e)
    } else if (e._tag === "BotApiCallSucceeded" || e._tag === "BotApiCallFailed" || e._tag === "BotApiCallOutcomeUnknown") {
      pending.delete(e.callId)
      done.add(e.callId)
    }
  }
  const readNew = async (): Promise<number> => {
    let n = 0
    for (;;) {
      const events = await run(o.log.readStream(o.botId, { from: version + 1, limit: 500 }))
      for (const e of events) {
        fold(e.data)
        version = e.version
      }
      n += events.length
      if (events.length < 500) return n
    }
  }
  /** Appends outcomes, re-reading and retrying when the actor appended first. */
  const record = async (events: ReadonlyArray<DomainEvent>) => {
    let todo = events
    for (let attempt = 0; todo.length > 0; attempt++) {
      const at = new Date().toISOString()
      const r = await run(
        Effect.either(
          o.log.append({
            botId: o.botId,
            expectedVersion: version,
            fence: o.fence,
            events: todo.map((data) => ({ data, occurredAt: at, correlationId: `outbox:${o.botId}`, causationId: null, actor: "system" }))
          })
        )
      )
      if (Either.isRight(r)) {
        for (const e of todo) fold(e)
        version = r.right.version
        recorded += todo.filter((e) => e._tag.startsWith("BotApiCall")).length
        return
      }
      if (r.left._tag !== "WrongExpectedVersion" || attempt > 50) throw r.left
      await readNew()
      // never record an outcome twice (another writer may have recorded it meanwhile)
      todo = todo.filter((e) => !("callId" in e) || !done.has(e.callId) || pending.has(e.callId))
    }
  }

  await readNew()
  if (pending.size > 0 && !superseded) {
    const abandoned = new Map([...pending.keys()].map((id) => [id, pending.get(id)!.method]))
    await record(abandonPendingCalls(abandoned))
  }

  /** Outcomes of calls already made whose recording failed: recorded before anything else, never dropped but on a stale fence. */
  let unrecorded: ReadonlyArray<DomainEvent> = []
  const loop = async () => {
    for (;;) {
      try {
        if (unrecorded.length > 0) {
          await record(unrecorded)
          unrecorded = []
        }
        // read once more after stop was asked: the actor's last intents still get sent
        const finishing = stopped
        woken = false
        const n = await readNew()
        if (superseded) return
        if (pending.size > 0) {
          const batch = [...pending.values()]
          for (const i of batch) pending.delete(i.callId)
          const outcomes = await executeIntents(batch, { botKey: o.botId, sender: o.sender, call: o.call, now: () => new Date().toISOString() })
          unrecorded = outcomes
          await record(outcomes)
          unrecorded = []
          if (outcomes.some((e) => e._tag === "BotApiCallFailed" && e.errorCode === 401)) o.onUnauthorized?.()
          continue
        }
        if (finishing) return
        if (n === 0) await nap(o.idlePollMs ?? 20)
      } catch (e) {
        o.onError?.(e)
        if ((e as { _tag?: string })._tag === "StaleFence" || stopped) return
        await new Promise((r) => setTimeout(r, 200))
      }
    }
  }
  const loopDone = loop()
  return {
    wake,
    stop: async () => {
      stopped = true
      wake()
      await loopDone
    },
    recorded: () => recorded
  }
}
