import { Clock, Data, Duration, Effect, Either, Exit, FiberMap, Schedule } from "effect"
import type { Scope } from "effect"
import type { EventLogService, Lease } from "../events/eventLog.js"
import type { DomainEvent } from "../events/schema/catalogue.js"
import { countGiveUp, countLeaseTakeover, countRestart } from "../metrics/registry.js"
import { retryWhileUnavailable } from "../health/backoff.js"
import { UNAUTHORIZED_REASON } from "./actor.js"
import type { ActorCommand, ActorStatus } from "./actor.js"
import type { ActorHandle, ActorHost, ActorSpec } from "./host.js"
import type { InboxService } from "./inbox.js"

export type RuntimeState = "waiting" | "starting" | "running" | "restarting" | "passivated" | "failed" | "stopped"

/** What the ops surface shows per bot. */
export interface BotRuntimeStatus {
  readonly botId: string
  /**
   * waiting: another node holds the lease; passivated: unloaded while idle, reactivated by its
   * next input; failed: gave up after its restart budget.
   */
  readonly state: RuntimeState
  readonly restarts: number
  readonly lastError: string | null
  readonly fence: number | null
  readonly version: number | null
  /** Inbox entries not handled yet (counted up to 10,000); null when not running here. */
  readonly inboxLag: number | null
}

export interface SupervisorOptions {
  readonly nodeId: string
  readonly host: ActorHost
  /** The main thread's log: leases, and the lifecycle facts an actor cannot record itself (crashes). */
  readonly log: EventLogService
  readonly inbox: InboxService
  readonly leaseTtlMs?: number
  /** How often a held lease is renewed; must be below the TTL (default: a third of it, so two renewals may fail in a row). */
  readonly leaseRenewMs?: number
  /** First restart delay; doubles each time, with jitter, capped by `maxBackoffMs`. */
  readonly baseBackoffMs?: number
  readonly maxBackoffMs?: number
  /** Consecutive crashes tolerated; the next one records BotGaveUp and leaves the bot failed. */
  readonly restartBudget?: number
  /** A run this long counts as healthy: the crash count and backoff start over. */
  readonly healthyAfterMs?: number
  /** No heartbeat for this long, or one input in the handler for this long: restart the actor. */
  readonly stuckAfterMs?: number
  /** Activations per second this node allows itself (a restart of 10,000 bots must not stampede Redis). */
  readonly activationsPerSecond?: number
  /** How long a graceful stop may take before the actor is aborted. */
  readonly drainTimeoutMs?: number
  /** Unload a bot idle this long (drained, snapshotted, lease released); its next input reloads it. Off when absent. */
  readonly passivateAfterMs?: number
  /** Most actors resident on this node; starting one more passivates the least recently active. */
  readonly maxResident?: number
  /** Defaults for every actor (snapshotEvery, inputBudgetMs...). */
  readonly actor?: Omit<ActorSpec, "botId" | "nodeId" | "fence">
  /**
   * Which bots this node should run when several share the fleet (runtime/balancer.ts): the
   * supervisor goes for the lease of those only, and polls it briskly while another node still
   * holds it (handing over). Absent: every bot is this node's to try (one node, or the old way).
   */
  readonly placement?: { readonly mine: (botId: string) => boolean }
  /**
   * The bot's stream holds events this node cannot read (a newer version wrote them): called once
   * the lease is released, so the node can place the bot elsewhere. The bot then waits here.
   */
  readonly onUnreadable?: (botId: string, reason: string) => Effect.Effect<void>
}

export interface Supervisor {
  /** Starts supervising the bot (idempotent): lease, actor, restarts. Returns at once. */
  readonly startBot: (botId: string, options?: StartOptions) => Effect.Effect<void>
  /** Drains the bot's actor (in-flight input finishes, BotStopped, snapshot) and releases its lease. */
  readonly stopBot: (botId: string) => Effect.Effect<void>
  /** Gracefully stops every bot, in parallel. */
  readonly drain: Effect.Effect<void>
  /**
   * Drains the bot here (BotStopped, snapshot, lease released) and goes on supervising it, so it
   * runs here again only when placement gives it back; the node it belongs to takes the lease.
   */
  readonly handOver: (botId: string) => Effect.Effect<void>
  /** The bots whose lease this node holds now. */
  readonly held: Effect.Effect<ReadonlyArray<string>>
  /** Sends a command to the running actor (config changes apply without a restart). */
  readonly send: (botId: string, command: ActorCommand) => Effect.Effect<ActorStatus, NotRunning | CommandRefused>
  readonly status: (botId: string) => Effect.Effect<BotRuntimeStatus | null>
  readonly statuses: Effect.Effect<ReadonlyArray<BotRuntimeStatus>>
  /**
   * Changes the activation budget, the passivation delay or the resident cap of a running
   * supervisor (live settings). A lower cap passivates the least recently active bots at once.
   */
  readonly tune: (t: SupervisorTuning) => Effect.Effect<void>
}

/** What `tune` changes; an absent field stays as it is (maxResident 0: no cap). */
export interface SupervisorTuning {
  readonly activationsPerSecond?: number
  readonly passivateAfterMs?: number
  readonly maxResident?: number
}

export interface StartOptions {
  /** Never passivated nor evicted (e.g. a polling bot: its poller runs only with its actor, so no input would wake it). */
  readonly pinned?: boolean
}

export class NotRunning extends Data.TaggedError("NotRunning")<{ readonly botId: string; readonly reason: string }> {
  override get message() {
    return `bot ${this.botId} is not running here: ${this.reason}`
  }
}

/** The actor refused the command (e.g. a config patch that is not an object), or ended meanwhile. */
export class CommandRefused extends Data.TaggedError("CommandRefused")<{ readonly botId: string; readonly reason: string }> {
  override get message() {
    return `bot ${this.botId} refused the command: ${this.reason}`
  }
}

/** Why one run of an actor ended. */
type RunEnd =
  | { readonly _tag: "Stopped" }
  | { readonly _tag: "Passivate" }
  | { readonly _tag: "Crashed"; readonly reason: string; readonly transient?: boolean }
  | { readonly _tag: "LeaseLost"; readonly reason: string }
  | { readonly _tag: "Unreadable"; readonly reason: string }

interface Entry {
  state: RuntimeState
  restarts: number
  lastError: string | null
  lease: Lease | null
  /** When the lease is renewed next: one cadence across runs and restart delays, so short runs cannot starve it. */
  renewAt: number
  handle: ActorHandle | null
  lastActiveAt: number
  /** Inbox cursor last seen; where a passivated bot's wake-up watch starts. */
  cursor: string | null
  /** Set while the actor runs: asks it to passivate (LRU eviction). */
  evict: (() => void) | null
  readonly pinned: boolean
}

/**
 * A store the actor needs was unreachable (LogUnavailable, InboxUnavailable, SnapshotUnavailable):
 * the bot is fine, the infrastructure is not. Such crashes back off but do not use up the restart
 * budget, or a Redis failover of a few seconds would turn every bot of the node into BotGaveUp.
 */
const isOutage = (e: unknown) => /Unavailable$/.test((e as { name?: unknown } | null)?.name as string)

/** The reason a passivated actor's BotStopped records. */
export const PASSIVATED = "passivated"

const errorText = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e))

/**
 * Why the bot's stream cannot be read by this node, when that is the failure: an event of a type
 * or schema version this version does not know (a newer node wrote it). Running the bot anyway
 * would fold a state without those facts; null for any other failure.
 */
export const unreadableReason = (e: unknown): string | null => {
  const x = e as { name?: unknown; reason?: unknown; message?: unknown } | null
  if (x?.name !== "InvalidEvent") return null
  const text = typeof x.message === "string" ? x.message : ""
  const reason = typeof x.reason === "string" ? x.reason : /: (UnknownSchemaVersion|UnknownType):/.exec(text)?.[1]
  return reason === "UnknownSchemaVersion" || reason === "UnknownType" ? text || reason : null
}

/**
 * One Effect fiber per bot (a FiberMap keyed by bot id) on the main thread. The fiber takes the
 * bot's lease (waiting while another node holds it), starts the actor on the host with the
 * lease's fence, renews the lease, watches heartbeats, and when the actor dies records
 * BotCrashed and restarts it after an exponential, jittered backoff; past the restart budget it
 * records BotGaveUp and stops trying. Interrupting the fiber (stopBot, drain, closing the scope)
 * drains the actor and releases the lease, in that order, so a successor never overlaps it.
 * One bot's failure never reaches another's fiber.
 */
export const makeSupervisor = (o: SupervisorOptions): Effect.Effect<Supervisor, never, Scope.Scope> =>
  Effect.gen(function* () {
    const fibers = yield* FiberMap.make<string>()
    const entries = new Map<string, Entry>()
    const ttl = o.leaseTtlMs ?? 15_000
    const renewEvery = o.leaseRenewMs ?? ttl / 3
    const stuckAfter = o.stuckAfterMs ?? 30_000
    const drainTimeout = o.drainTimeoutMs ?? 10_000
    let slotMs = o.activationsPerSecond ? 1000 / o.activationsPerSecond : 0
    // live settings (tune): read where they are used, never captured at start
    let passivateAfterMs = o.passivateAfterMs
    let maxResident = o.maxResident
    let nextSlot = 0
    const placementPollMs = Math.min(1000, ttl / 4)

    /** Waits for this node's next activation slot (a token bucket of one, refilled at the rate). */
    const activationSlot = Effect.gen(function* () {
      if (slotMs === 0) return
      const now = yield* Clock.currentTimeMillis
      const at = Math.max(now, nextSlot)
      nextSlot = at + slotMs
      if (at > now) yield* Effect.sleep(Duration.millis(at - now))
    })

    const record = (botId: string, fence: number, data: DomainEvent) =>
      Effect.gen(function* () {
        for (let attempt = 0; attempt < 5; attempt++) {
          const version = yield* o.log.streamVersion(botId)
          const now = yield* Clock.currentTimeMillis
          const r = yield* Effect.either(
            o.log.append({
              botId,
              expectedVersion: version,
              fence,
              events: [{ data, occurredAt: new Date(now).toISOString(), correlationId: `supervisor:${o.nodeId}`, actor: "system" }]
            })
          )
          if (Either.isLeft(r) && r.left._tag === "LogUnavailable") return yield* r.left
          if (Either.isRight(r) || r.left._tag !== "WrongExpectedVersion") return
        }
        // the log is down: the fact waits (with a backoff) for it to come back, a while; after
        // that, a lost lifecycle fact must not stop supervision
      }).pipe(retryWhileUnavailable(), Effect.catchAll(() => Effect.void))

    const acquire = (botId: string, entry: Entry) =>
      Effect.gen(function* () {
        let heldElsewhere = false
        let needSlot = true
        for (;;) {
          if (o.placement && !o.placement.mine(botId)) {
            // another node's bot: no lease traffic, only the in-memory placement, looked at again soon
            entry.state = "waiting"
            needSlot = true
            yield* Effect.sleep(Duration.millis(placementPollMs))
            continue
          }
          // ours (from the start, or since a node left or joined): an activation within the
          // budget, so neither a start nor a failover stampedes the stores; a bot placed elsewhere
          // takes no slot
          if (needSlot) {
            entry.state = "starting"
            yield* activationSlot
            needSlot = false
          }
          const got = yield* Effect.either(o.log.acquireLease(botId, o.nodeId, ttl))
          const lease = Either.getOrNull(got)
          if (lease) {
            if (heldElsewhere) countLeaseTakeover()
            entry.renewAt = (yield* Clock.currentTimeMillis) + renewEvery
            return lease
          }
          heldElsewhere ||= Either.isRight(got)
          entry.state = "waiting"
          // placed here but still held elsewhere: a handover or a dead holder's lapse is under
          // way, so look again soon rather than in half a TTL
          yield* Effect.sleep(Duration.millis(o.placement ? placementPollMs : ttl / 2))
        }
      })

    const release = (entry: Entry) =>
      Effect.suspend(() => (entry.lease ? o.log.releaseLease(entry.lease) : Effect.succeed(false))).pipe(
        Effect.catchAll(() => Effect.succeed(false)),
        Effect.tap(() => Effect.sync(() => (entry.lease = null)))
      )

    /**
     * Renews the lease every `renewEvery` (at `entry.renewAt`); ends (succeeds) only when the
     * lease is lost. Runs while the actor runs and while a restart waits out its delay: the
     * cadence lives on the entry, not in this loop, so runs that crash faster than `renewEvery`
     * still renew on time.
     */
    const keepLease = (entry: Entry) =>
      Effect.gen(function* () {
        for (;;) {
          const now = yield* Clock.currentTimeMillis
          if (entry.renewAt > now) yield* Effect.sleep(Duration.millis(entry.renewAt - now))
          const lost = yield* renewLease(entry)
          if (lost) return lost
        }
      })

    /** One renewal; LeaseLost when the lease is no longer ours, null otherwise. */
    const renewLease = (entry: Entry) =>
      Effect.gen(function* () {
        const renewed = yield* o.log.renewLease(entry.lease!, ttl).pipe(Effect.either)
        entry.renewAt = (yield* Clock.currentTimeMillis) + renewEvery
        if (Either.isRight(renewed)) {
          if (renewed.right === null) return { _tag: "LeaseLost", reason: "the lease was taken by another node" } as const
          entry.lease = renewed.right
        }
        // an unreachable store: keep the actor (or the restart); the next tick tries again, and
        // appends fail on their own if the lease lapses meanwhile
        return null
      })

    /**
     * Waits out a restart delay holding the lease, then renews it once more: Waited when the bot
     * may restart, LeaseLost when another node took it meanwhile (restarting then would run an
     * actor on a stale fence, and the last tick may be up to `renewEvery` old).
     */
    const delayHoldingLease = <A>(entry: Entry, delay: Effect.Effect<A>) =>
      Effect.race(delay.pipe(Effect.map((a) => ({ _tag: "Waited", value: a }) as const)), keepLease(entry)).pipe(
        Effect.flatMap((w) => (w._tag === "Waited" ? renewLease(entry).pipe(Effect.map((lost) => lost ?? w)) : Effect.succeed(w)))
      )

    /** Another node owns the bot now: it is theirs to run; ours to forget. */
    const forget = (entry: Entry, reason: string) =>
      Effect.sync(() => {
        entry.state = "stopped"
        entry.lastError = reason
        entry.lease = null
      })

    /** Ends when the actor stops beating or sits on one input too long. */
    const watchdog = (handle: ActorHandle) =>
      Effect.gen(function* () {
        for (;;) {
          yield* Effect.sleep(Duration.millis(Math.max(50, stuckAfter / 4)))
          const now = yield* Clock.currentTimeMillis
          const h = handle.health()
          if (now - h.beatAt > stuckAfter) return `no heartbeat for ${now - h.beatAt} ms`
          if (h.busySince !== null && now - h.busySince > stuckAfter) return `one input in the handler for ${now - h.busySince} ms`
        }
      })

    const gracefulStop = (handle: ActorHandle, reason = "drain") =>
      Effect.promise(() => handle.send({ _tag: "Stop", reason }).catch(() => undefined)).pipe(
        Effect.zipRight(Effect.promise(() => handle.done.then(() => true, () => true))),
        Effect.timeoutTo({ duration: Duration.millis(drainTimeout), onSuccess: () => true, onTimeout: () => false }),
        Effect.flatMap((drained) => (drained ? Effect.void : Effect.sync(() => handle.abort("drain timed out"))))
      )

    /**
     * Ends with Passivate when the actor made no progress (same version and cursor) for
     * `passivateAfterMs` with nothing waiting in its inbox, or at once when evicted (LRU cap).
     */
    const idleWatch = (botId: string, entry: Entry, handle: ActorHandle): Effect.Effect<RunEnd> => {
      const evicted = Effect.async<RunEnd>((resume) => {
        entry.evict = () => resume(Effect.succeed({ _tag: "Passivate" }))
        return Effect.sync(() => (entry.evict = null))
      })
      const every = Math.max(20, Math.min(1000, (passivateAfterMs ?? 2000) / 2))
      const idle = Effect.gen(function* () {
        let last = ""
        for (;;) {
          yield* Effect.sleep(Duration.millis(every))
          const s = yield* Effect.promise(() => handle.send({ _tag: "Status" }).then((x) => x, () => null))
          if (!s) continue
          const now = yield* Clock.currentTimeMillis
          entry.cursor = s.inboxCursor
          const key = `${s.version}/${s.inboxCursor}`
          if (key !== last) {
            last = key
            entry.lastActiveAt = now
            continue
          }
          if (passivateAfterMs === undefined || now - entry.lastActiveAt < passivateAfterMs) continue
          const lag = yield* o.inbox.lag(botId, s.inboxCursor, 1).pipe(Effect.orElseSucceed(() => 1))
          if (lag === 0) return { _tag: "Passivate" } as RunEnd
        }
      })
      return Effect.raceFirst(evicted, idle)
    }

    /** Makes room under `maxResident` by passivating the least recently active other actor. */
    const evictIfFull = (botId: string) =>
      Effect.sync(() => {
        if (maxResident === undefined) return
        // resident: an actor is loaded; bots queued for an activation slot or a lease are not
        const resident = [...entries].filter(([id, e]) => id !== botId && e.handle !== null)
        if (resident.length < maxResident) return
        const victim = resident.filter(([, e]) => e.evict !== null).sort((a, b) => a[1].lastActiveAt - b[1].lastActiveAt)[0]
        victim?.[1].evict?.()
      })

    /** Parks a passivated bot until its inbox has something after its cursor. */
    const awaitInput = (botId: string, entry: Entry) =>
      Effect.gen(function* () {
        for (;;) {
          const lag = yield* o.inbox.lag(botId, entry.cursor, 1).pipe(Effect.orElseSucceed(() => 0))
          if (lag > 0) return
          yield* o.inbox.waitFor(botId, entry.cursor, 5000).pipe(Effect.orElse(() => Effect.sleep(Duration.seconds(1))))
        }
      })

    /** One run of the actor: until it dies, the lease is lost, or the fiber is interrupted (drain). */
    const runOnce = (botId: string, entry: Entry) =>
      Effect.acquireUseRelease(
        Effect.sync(() => o.host.start({ ...o.actor, botId, nodeId: o.nodeId, fence: entry.lease!.fence })),
        (handle) =>
          Effect.gen(function* () {
            entry.handle = handle
            const died = Effect.promise(() =>
              handle.done.then(
                (): RunEnd => ({ _tag: "Stopped" }),
                (e: { name?: string; reason?: string }): RunEnd => {
                  if (e?.name === "LeaseLost") return { _tag: "LeaseLost", reason: errorText(e) }
                  const unreadable = unreadableReason(e)
                  if (unreadable !== null) return { _tag: "Unreadable", reason: unreadable }
                  return { _tag: "Crashed", reason: errorText(e), transient: isOutage(e) }
                }
              )
            )
            yield* Effect.promise(() => handle.started.then(() => undefined, () => undefined))
            if (entry.state !== "failed") entry.state = "running"
            const stuck = watchdog(handle).pipe(
              Effect.tap((why) => Effect.sync(() => handle.abort(why))),
              Effect.map((why): RunEnd => ({ _tag: "Crashed", reason: `stuck: ${why}` }))
            )
            const racers = [died, keepLease(entry), stuck]
            if (!entry.pinned) racers.push(idleWatch(botId, entry, handle))
            return yield* Effect.raceAll(racers)
          }),
        (handle, exit) =>
          Effect.gen(function* () {
            entry.handle = null
            entry.evict = null
            if (Exit.isInterrupted(exit)) yield* gracefulStop(handle)
            else if (Exit.isSuccess(exit) && exit.value._tag === "Passivate") yield* gracefulStop(handle, PASSIVATED)
            else if (Exit.isSuccess(exit) && exit.value._tag === "LeaseLost") {
              // another node owns the bot now: its appends are refused anyway, but its poller and
              // calls would run on, and host.close() would wait for it forever
              handle.abort("lease lost")
              yield* Effect.race(Effect.promise(() => handle.done.then(() => undefined, () => undefined)), Effect.sleep("5 seconds"))
            }
          })
      )

    /**
     * Whether the bot was last passivated (by this node or another) and nothing waits in its
     * inbox: then there is nothing to run. Without this, a node waiting for the lease would take
     * an idle bot the moment its holder passivated it, and idle bots would wander between nodes;
     * and a node restart would activate every idle bot of the fleet.
     */
    const lastFact = (botId: string, entry: Entry) =>
      Effect.gen(function* () {
        // one read on every activation: the newest event only
        const newest = yield* Effect.either(o.log.readStream(botId, { direction: "backward", limit: 1 }))
        if (Either.isLeft(newest)) {
          const unreadable = unreadableReason(newest.left)
          if (unreadable !== null) return { unreadable } as const
          return yield* newest.left
        }
        const last = newest.right[0]?.data
        if (last?._tag !== "BotStopped") return "run" as const
        // stopped because Telegram refused its token: no node runs it again until a new token
        // is registered (BotTokenRotated, then a start), or every waiting node would try in turn
        if (last.reason === UNAUTHORIZED_REASON) return "revoked" as const
        if (passivateAfterMs === undefined || entry.pinned || last.reason !== PASSIVATED) return "run" as const
        // passivation snapshots, which trims the inbox up to the cursor: what is left is unhandled
        return (yield* o.inbox.lag(botId, null, 1)) === 0 ? ("idle" as const) : ("run" as const)
      }).pipe(Effect.orElseSucceed(() => "run" as const))

    /**
     * This node cannot read the bot's stream: says so (the node places it elsewhere) and, without
     * placement, waits a TTL before looking again (a newer node may take it meanwhile).
     */
    const refuse = (botId: string, entry: Entry, reason: string) =>
      Effect.gen(function* () {
        entry.state = "waiting"
        entry.lastError = reason
        if (o.onUnreadable) yield* o.onUnreadable(botId, reason)
        yield* Effect.sleep(Duration.millis(o.placement ? placementPollMs : ttl))
      })

    /**
     * Takes the lease (waiting while another node holds it), within the activation budget; an idle
     * passivated bot waits for input first. False: the bot must not run (its token was revoked).
     */
    const activate = (botId: string, entry: Entry) =>
      Effect.gen(function* () {
        for (;;) {
          entry.state = "starting"
          entry.lease = yield* acquire(botId, entry)
          entry.state = "starting"
          const fact = yield* lastFact(botId, entry)
          if (fact === "run") return true
          yield* release(entry)
          if (typeof fact === "object") {
            yield* refuse(botId, entry, fact.unreadable)
            continue
          }
          if (fact === "revoked") {
            entry.lastError = UNAUTHORIZED_REASON
            return false
          }
          entry.state = "passivated"
          entry.cursor = null
          yield* awaitInput(botId, entry)
        }
      })

    const supervise = (botId: string, entry: Entry) =>
      Effect.gen(function* () {
        const delays = Schedule.exponential(Duration.millis(o.baseBackoffMs ?? 200), 2).pipe(
          Schedule.jittered,
          Schedule.modifyDelay((d) => Duration.min(d, Duration.millis(o.maxBackoffMs ?? 30_000)))
        )
        const backoff = yield* Schedule.driver(delays.pipe(Schedule.intersect(Schedule.recurs(o.restartBudget ?? 5))))
        // the same delays without a budget: outages are waited out, however long
        const outageBackoff = yield* Schedule.driver(delays)
        if (!(yield* activate(botId, entry))) return
        for (;;) {
          const startedAt = yield* Clock.currentTimeMillis
          entry.lastActiveAt = startedAt
          yield* evictIfFull(botId)
          const end = yield* runOnce(botId, entry)
          if (end._tag === "Stopped") return // asked to stop (a Stop command): drained, BotStopped recorded
          if (end._tag === "Passivate") {
            // drained and snapshotted by runOnce; the lease goes back until the next input
            yield* release(entry)
            entry.state = "passivated"
            yield* awaitInput(botId, entry)
            if (!(yield* activate(botId, entry))) return
            continue
          }
          if (end._tag === "LeaseLost") return yield* forget(entry, end.reason)
          if (end._tag === "Unreadable") {
            // nothing recorded: a fact appended now would be written by a node that cannot read
            // the stream it extends; the lease goes back and a newer node takes the bot
            yield* release(entry)
            yield* refuse(botId, entry, end.reason)
            if (!(yield* activate(botId, entry))) return
            continue
          }
          entry.restarts += 1
          countRestart(botId, end._tag === "Crashed" && end.transient ? "outage" : "crash")
          entry.lastError = end.reason
          entry.state = "restarting"
          if ((yield* Clock.currentTimeMillis) - startedAt >= (o.healthyAfterMs ?? 60_000)) yield* Effect.zipRight(backoff.reset, outageBackoff.reset)
          if (end._tag === "Crashed" && end.transient) {
            // an outage: wait (capped, jittered) and try again, outside the restart budget; the
            // BotCrashed record is best effort, as the store may still be down
            yield* record(botId, entry.lease!.fence, { _tag: "BotCrashed", nodeId: o.nodeId, reason: end.reason, attempt: entry.restarts }).pipe(Effect.ignore)
            const waited = yield* delayHoldingLease(entry, outageBackoff.next(end.reason).pipe(Effect.ignore))
            if (waited._tag === "LeaseLost") return yield* forget(entry, waited.reason)
            yield* activationSlot
            continue
          }
          yield* outageBackoff.reset
          yield* record(botId, entry.lease!.fence, { _tag: "BotCrashed", nodeId: o.nodeId, reason: end.reason, attempt: entry.restarts })
          const waited = yield* delayHoldingLease(entry, Effect.either(backoff.next(end.reason)))
          if (waited._tag === "LeaseLost") return yield* forget(entry, waited.reason)
          if (Either.isLeft(waited.value)) {
            yield* record(botId, entry.lease!.fence, { _tag: "BotGaveUp", lastError: end.reason, attempts: entry.restarts })
            countGiveUp(botId)
            entry.state = "failed"
            yield* release(entry)
            return
          }
          yield* activationSlot
        }
      }).pipe(
        Effect.ensuring(
          Effect.suspend(() => {
            if (entry.state !== "failed") entry.state = "stopped"
            return release(entry)
          })
        )
      )

    const startBot = (botId: string, options: StartOptions = {}) =>
      Effect.gen(function* () {
        if (yield* FiberMap.has(fibers, botId)) return
        const before = entries.get(botId)
        const entry: Entry = {
          state: "starting",
          restarts: before?.restarts ?? 0,
          lastError: before?.lastError ?? null,
          lease: null,
          renewAt: 0,
          handle: null,
          lastActiveAt: 0,
          cursor: null,
          evict: null,
          pinned: options.pinned ?? false
        }
        entries.set(botId, entry)
        yield* FiberMap.run(fibers, botId, supervise(botId, entry), { onlyIfMissing: true })
      })

    const statusOf = (botId: string, entry: Entry): Effect.Effect<BotRuntimeStatus> =>
      Effect.gen(function* () {
        const base = { botId, state: entry.state, restarts: entry.restarts, lastError: entry.lastError, fence: entry.lease?.fence ?? null }
        const handle = entry.handle
        if (!handle || entry.state !== "running") return { ...base, version: null, inboxLag: null }
        const actor = yield* Effect.promise(() => handle.send({ _tag: "Status" }).then((s) => s, () => null)).pipe(
          Effect.timeoutTo({ duration: Duration.seconds(5), onSuccess: (s) => s, onTimeout: () => null })
        )
        if (!actor) return { ...base, version: null, inboxLag: null }
        const inboxLag = yield* o.inbox.lag(botId, actor.inboxCursor).pipe(Effect.orElseSucceed(() => null))
        return { ...base, version: actor.version, inboxLag }
      })

    return {
      startBot,
      stopBot: (botId) => FiberMap.remove(fibers, botId),
      handOver: (botId) =>
        Effect.gen(function* () {
          const entry = entries.get(botId)
          if (!entry || !(yield* FiberMap.has(fibers, botId))) return
          yield* FiberMap.remove(fibers, botId)
          yield* startBot(botId, { pinned: entry.pinned })
        }),
      held: Effect.sync(() => [...entries].filter(([, e]) => e.lease !== null).map(([id]) => id)),
      drain: Effect.suspend(() =>
        Effect.forEach([...entries.keys()], (id) => FiberMap.remove(fibers, id), { concurrency: "unbounded", discard: true })
      ),
      send: (botId, command) =>
        Effect.suspend((): Effect.Effect<ActorStatus, NotRunning | CommandRefused> => {
          const handle = entries.get(botId)?.handle
          if (!handle) return Effect.fail(new NotRunning({ botId, reason: entries.get(botId)?.state ?? "unknown bot" }))
          return Effect.tryPromise({ try: () => handle.send(command), catch: (e) => new CommandRefused({ botId, reason: errorText(e) }) })
        }),
      status: (botId) => Effect.suspend(() => {
        const entry = entries.get(botId)
        return entry ? statusOf(botId, entry) : Effect.succeed(null)
      }),
      statuses: Effect.suspend(() =>
        Effect.forEach([...entries], ([id, entry]) => statusOf(id, entry), { concurrency: 50 })
      ),
      tune: (t) =>
        Effect.sync(() => {
          if (t.activationsPerSecond !== undefined) slotMs = t.activationsPerSecond > 0 ? 1000 / t.activationsPerSecond : 0
          if (t.passivateAfterMs !== undefined) passivateAfterMs = t.passivateAfterMs
          if (t.maxResident !== undefined) maxResident = t.maxResident > 0 ? t.maxResident : undefined
          if (maxResident === undefined) return
          const resident = [...entries.values()].filter((e) => e.handle !== null && e.evict !== null).sort((a, b) => a.lastActiveAt - b.lastActiveAt)
          for (const e of resident.slice(0, Math.max(0, resident.length - maxResident))) e.evict?.()
        })
    }
  })
