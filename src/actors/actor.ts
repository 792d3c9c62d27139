import { Data, Effect, Either } from "effect"
import type { WrongExpectedVersion } from "../events/errors.js"
import type { EventLogService } from "../events/eventLog.js"
import type { DomainEvent, EventOf } from "../events/schema/catalogue.js"
import type { NewEvent } from "../events/schema/envelope.js"
import { makeBotDecider } from "./decider/decide.js"
import type { BotInput } from "./decider/input.js"
import { SNAPSHOT_SCHEMA_VERSION, decodeState, encodeState } from "./decider/snapshot.js"
import { evolve, initialState } from "./decider/state.js"
import type { BotState, BotStatus } from "./decider/state.js"
import type { UpdateHandler } from "./decider/updateHandler.js"
import { ARCHIVE_PAGE, readArchivedRange } from "./eventArchive.js"
import type { EventArchiveService } from "./eventArchive.js"
import { compareInboxIds } from "./inbox.js"
import type { InboxEntry, InboxService } from "./inbox.js"
import type { SnapshotStoreService } from "./snapshotStore.js"

/** What an actor needs from its thread: the ports, and the bot kinds. */
export interface ActorDeps {
  readonly log: EventLogService
  readonly inbox: InboxService
  readonly snapshots: SnapshotStoreService
  /**
   * The cold log (Postgres `events_archive`): where hydration finds the versions the hot log no
   * longer has (trimmed below a snapshot that was then lost, or is of another schema version).
   * Absent: such a bot fails with HistoryMissing instead of running on a partial history.
   */
  readonly archive?: EventArchiveService
  /** The update handler of a bot's kind (the extension point). */
  readonly handlerFor: (state: BotState) => UpdateHandler
  /**
   * Sends one of the bot's recorded Bot API intents and returns the events recording how it
   * ended (the Telegram edge implements it). Absent: calls fail with nothing sent.
   */
  readonly executeCall?: CallExecutor
  readonly now?: () => number
}

export type CallExecutor = (botId: string, state: BotState, intent: EventOf<"BotApiCallIntended">) => Promise<ReadonlyArray<DomainEvent>>

/** The reason a bot stops with when Telegram refuses its token. */
export const UNAUTHORIZED_REASON = "Telegram refused the bot's token (401): revoked or replaced; register the new token to restart"

export interface ActorConfig {
  readonly botId: string
  readonly nodeId: string
  /** The fencing token of the lease the supervisor holds for this bot. */
  readonly fence: number
  /** Snapshot every N events (default 100). */
  readonly snapshotEvery?: number
  /** Inbox entries read per round (default 32). */
  readonly batchSize?: number
  /** Longest wait for new inbox entries before reading again anyway (default 2000 ms). */
  readonly idleWaitMs?: number
  /** A handler slower than this fails its update (dead-lettered, default 10 s). */
  readonly inputBudgetMs?: number
}

/** Commands an actor takes from its host while running. */
export type ActorCommand =
  | { readonly _tag: "ChangeConfig"; readonly patch: unknown }
  | { readonly _tag: "Stop"; readonly reason: string }
  /** Records BotRemoved, then stops like Stop. */
  | { readonly _tag: "Remove"; readonly reason: string }
  /** Records BotTokenRotated (the new token, sealed). */
  | { readonly _tag: "RotateToken"; readonly tokenCiphertext: string }
  | { readonly _tag: "Status" }

export interface ActorStatus {
  readonly botId: string
  readonly status: BotStatus
  readonly version: number
  readonly inboxCursor: string | null
  readonly updatesHandled: number
  readonly updatesFailed: number
  readonly duplicatesDropped: number
  readonly config: unknown
}

export interface ActorHealth {
  /** Last time the actor's loop made progress or waited idle (ms). */
  readonly beatAt: number
  /** Since when the current input has been in the handler; null when idle. */
  readonly busySince: number | null
}

/** Another node holds the bot's lease now: this actor must stop writing. Not retryable here. */
export class LeaseLost extends Data.TaggedError("LeaseLost")<{ readonly botId: string; readonly fence: number; readonly current: number }> {
  override get message() {
    return `bot ${this.botId}: lease lost (fence ${this.fence}, current ${this.current})`
  }
}

const run = <A, E>(eff: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(eff)

export const errorText = (e: unknown): string => (e instanceof Error ? `${e.name}: ${e.message}` : String(e))

const userActor = (update: unknown): string => {
  const from = (update as { message?: { from?: { id?: unknown } } } | null)?.message?.from?.id
  return typeof from === "number" ? `user:${from}` : "system"
}

/**
 * One bot's actor: the imperative shell around the pure decider. Its state lives only here, on
 * the thread that runs it.
 *
 * Why it is exactly-once: each inbox entry is decided against the current state, and the events
 * it caused are appended together with `UpdateReceived`/`UpdateDuplicateDropped`/`UpdateFailed`,
 * which carry the entry id: the cursor moves in the same atomic append (one per batch of
 * entries), checked against the expected version and the lease's fence. The state changes only
 * after the append succeeded. A crash before the append leaves the cursor behind the entries
 * (they are handled again, from the same state); after it, the rehydrated cursor is past them.
 */
export class BotActor {
  private state: BotState = initialState
  private version = 0
  private snapshotVersion = 0
  private readonly decider
  private readonly commands: Array<{ cmd: ActorCommand; resolve: (s: ActorStatus) => void; reject: (e: unknown) => void }> = []
  /** Why `run` failed; null while it runs or after a clean stop. */
  private endedWith: unknown = null
  private wakeCommand: (() => void) | null = null
  private readonly stopWaiters: Array<{ resolve: (s: ActorStatus) => void; reject: (e: unknown) => void }> = []
  private stopReason: string | null = null
  private beatAt: number
  private busySince: number | null = null
  /** Since when the actor waits on a Bot API call (limits, 429s): alive, not stuck in bot code. */
  private callingSince: number | null = null
  private readonly now: () => number
  private killedFor: string | null = null

  constructor(
    private readonly deps: ActorDeps,
    private readonly config: ActorConfig
  ) {
    this.decider = makeBotDecider(deps.handlerFor)
    this.now = deps.now ?? Date.now
    this.beatAt = this.now()
  }

  get botId() {
    return this.config.botId
  }

  /**
   * Forbids any further append: for an actor abandoned on a live thread (stuck, in-process), whose
   * successor holds the same fence, so the fence alone would not stop a late write.
   */
  kill(reason: string) {
    this.killedFor = reason
    this.wakeCommand?.()
  }

  health(): ActorHealth {
    return { beatAt: this.callingSince !== null ? this.now() : this.beatAt, busySince: this.busySince }
  }

  status(): ActorStatus {
    const s = this.state
    return {
      botId: this.config.botId,
      status: s.status,
      version: this.version,
      inboxCursor: s.inboxCursor,
      updatesHandled: s.updatesHandled,
      updatesFailed: s.updatesFailed,
      duplicatesDropped: s.duplicatesDropped,
      config: s.config
    }
  }

  /** Queues a command; it runs between inputs, never concurrently with one. */
  send(cmd: ActorCommand): Promise<ActorStatus> {
    return new Promise((resolve, reject) => {
      if (this.endedWith !== null) return reject(this.endedWith)
      this.commands.push({ cmd, resolve, reject })
      this.wakeCommand?.()
    })
  }

  /**
   * Hydrates, records BotStarted, then handles inbox entries and commands until a Stop command;
   * then drains (the input in hand finishes), records BotStopped and snapshots. Resolves with
   * the final status; rejects when the actor cannot go on (lease lost, log unreachable, a bug).
   */
  async run(onStarted?: (s: ActorStatus) => void): Promise<ActorStatus> {
    try {
      return await this.runUntilStopped(onStarted)
    } catch (e) {
      // a dead actor answers every queued and later command with why it died, instead of never
      this.endedWith = e
      for (const c of [...this.commands.splice(0), ...this.stopWaiters.splice(0)]) c.reject(e)
      throw e
    }
  }

  private async runUntilStopped(onStarted?: (s: ActorStatus) => void): Promise<ActorStatus> {
    await this.hydrate()
    await this.apply({ _tag: "Start", nodeId: this.config.nodeId, fence: this.config.fence, at: this.iso() }, `node:${this.config.nodeId}`, undefined, false)
    onStarted?.(this.status())
    // after reporting started: a snapshot due after a long tail must not delay the activation
    await this.snapshotIfDue()
    const batch = this.config.batchSize ?? 32
    let lastBatch = batch
    while (this.stopReason === null) {
      if (this.killedFor !== null) throw new Error(`actor ${this.botId} was killed: ${this.killedFor}`)
      this.beatAt = this.now()
      if (this.commands.length > 0) {
        await this.runCommand(this.commands.shift()!)
        continue
      }
      // after a short batch, wait first: the wait returns at once (often with the entries) when
      // some are there, which saves a read per wake-up
      const waited = lastBatch < batch ? await this.idle(batch) : undefined
      if (this.commands.length > 0 || this.stopReason !== null) continue
      const entries = waited && waited.length > 0 ? waited : await run(this.deps.inbox.readAfter(this.botId, this.state.inboxCursor, batch))
      lastBatch = entries.length
      if (entries.length === 0) continue
      await this.handleBatch(entries)
    }
    await this.apply({ _tag: "Stop", nodeId: this.config.nodeId, reason: this.stopReason, at: this.iso() }, `node:${this.config.nodeId}`)
    await this.snapshot()
    for (const c of this.commands.splice(0)) c.resolve(this.status())
    for (const w of this.stopWaiters.splice(0)) w.resolve(this.status())
    return this.status()
  }

  private iso() {
    return new Date(this.now()).toISOString()
  }

  private async idle(count: number): Promise<ReadonlyArray<InboxEntry> | void> {
    const woken = Effect.async<ReadonlyArray<InboxEntry> | void>((resume) => {
      // a command queued between the empty read and now must not wait out the idle period
      if (this.commands.length > 0 || this.killedFor !== null) return resume(Effect.void)
      this.wakeCommand = () => resume(Effect.void)
      return Effect.sync(() => {
        this.wakeCommand = null
      })
    })
    return run(
      Effect.raceFirst(this.deps.inbox.waitFor(this.botId, this.state.inboxCursor, this.config.idleWaitMs ?? 2000, count), woken).pipe(
        Effect.ensuring(Effect.sync(() => (this.wakeCommand = null)))
      )
    )
  }

  private async runCommand(c: { cmd: ActorCommand; resolve: (s: ActorStatus) => void; reject: (e: unknown) => void }) {
    try {
      switch (c.cmd._tag) {
        case "ChangeConfig":
          await this.apply({ _tag: "ChangeConfig", patch: c.cmd.patch, at: this.iso() }, "system")
          break
        case "Stop":
          this.stopReason = c.cmd.reason
          // answered once BotStopped is recorded: the caller learns the bot's final version
          this.stopWaiters.push(c)
          return
        case "Remove":
          await this.apply({ _tag: "Remove", reason: c.cmd.reason, at: this.iso() }, "system")
          this.stopReason = c.cmd.reason
          this.stopWaiters.push(c)
          return
        case "RotateToken":
          await this.apply({ _tag: "RotateToken", tokenCiphertext: c.cmd.tokenCiphertext, at: this.iso() }, "system")
          break
        case "Status":
          break
      }
      c.resolve(this.status())
    } catch (e) {
      // a refused command (InputRejected) is the caller's problem, not the actor's
      if ((e as { _tag?: string })._tag === "InputRejected") c.reject(e)
      else {
        c.reject(e)
        throw e
      }
    }
  }

  private async hydrate() {
    const snap = await run(this.deps.snapshots.load(this.botId))
    const restored = snap ? decodeState(snap.schemaVersion, snap.state) : null
    if (snap && restored) {
      this.state = restored
      this.version = snap.version
      this.snapshotVersion = snap.version
    } else {
      this.state = initialState
      this.version = 0
    }
    await this.catchUp()
  }

  /**
   * Folds the events after our version (others may have appended, e.g. a config change). When
   * the log starts above our version (trimmed below a snapshot we could not use), the versions in
   * between come from the archive first, all of them or HistoryMissing: a fold that skipped some
   * would run the bot on a wrong state.
   */
  private async catchUp() {
    for (;;) {
      const events = await run(this.deps.log.readStream(this.botId, { from: this.version + 1, limit: 1000 }))
      // nothing read for a bot we know nothing of: a new bot, or a stream trimmed whole, which
      // only its version tells apart (above a snapshot, trims never leave the stream empty)
      const logFrom = events[0]?.version ?? (this.version === 0 ? (await run(this.deps.log.streamVersion(this.botId))) + 1 : 1)
      for (let from = this.version + 1; from < logFrom; from = this.version + 1) {
        const archived = await run(Effect.either(readArchivedRange(this.deps.archive, this.botId, from, Math.min(logFrom - 1, from + ARCHIVE_PAGE - 1))))
        // thrown as it is, not wrapped: the host and the supervisor report it by its name
        if (Either.isLeft(archived)) throw archived.left
        for (const e of archived.right) {
          this.state = evolve(this.state, e.data)
          this.version = e.version
        }
      }
      for (const e of events) {
        this.state = evolve(this.state, e.data)
        this.version = e.version
      }
      if (events.length < 1000) return
    }
  }

  /**
   * Decides a batch of entries one after the other against a provisional state, then appends all
   * their events in ONE append (the cursor lands on the last entry). If the append fails nothing
   * was recorded: the provisional state is dropped and the entries are decided again later, from
   * the recorded state, so the batch is all-or-nothing like a single entry.
   *
   * A handler that calls the Bot API ends its decision with the call's intent: what is decided so
   * far is appended (the intent is recorded before anything is sent), the call is sent, and the
   * update is decided again with the outcome in the state; the outcome is appended with that next
   * decision. A crash in between leaves the update's cursor where it was: the update is decided
   * again after restart, its recorded calls answer from the log, and an intent without outcome is
   * recorded as unknown instead of being sent twice.
   */
  private async handleBatch(entries: ReadonlyArray<InboxEntry>) {
    let state = this.state
    let events: NewEvent[] = []
    /** Outcomes of calls already sent and not yet appended: facts that must not be lost. */
    let facts: NewEvent[] = []
    const record = async (): Promise<boolean> => {
      const r = await this.appendFenced(events)
      if (Either.isRight(r)) {
        this.state = state
        this.version = r.right
        events = []
        facts = []
        await this.snapshotIfDue()
        return true
      }
      // someone else appended (e.g. a config change): fold it in; the entries are decided again
      // from there, but the outcomes of calls already sent are recorded now, on their own
      await this.catchUp()
      if (facts.length > 0) await this.appendFacts(facts)
      return false
    }
    for (const entry of entries) {
      if (state.inboxCursor !== null && compareInboxIds(entry.id, state.inboxCursor) <= 0) continue
      const correlationId = `inbox:${entry.id}`
      for (;;) {
        let decided: ReadonlyArray<DomainEvent>
        let actor = userActor(entry.update)
        try {
          decided = await this.decide({ _tag: "HandleUpdate", inboxId: entry.id, update: entry.update, at: entry.receivedAt }, true, state)
        } catch (e) {
          if (!(e instanceof HandlerFailed)) throw e
          // dead letter first: a crash before the append re-runs the handler (at-least-once in the
          // dead-letter stream), never loses the reason
          await run(this.deps.inbox.deadLetter(this.botId, entry, e.reason))
          decided = await this.decide({ _tag: "FailUpdate", inboxId: entry.id, update: entry.update, reason: e.reason, at: entry.receivedAt }, false, state)
          actor = "system"
        }
        for (const data of decided) {
          state = evolve(state, data)
          events.push({ data, occurredAt: entry.receivedAt, correlationId, causationId: null, actor })
        }
        const last = decided[decided.length - 1]
        if (last?._tag !== "BotApiCallIntended") break
        if (!(await record())) return
        const outcome = await this.execute(state, last)
        const at = this.iso()
        for (const data of outcome) {
          state = evolve(state, data)
          const e: NewEvent = { data, occurredAt: at, correlationId, causationId: null, actor: "system" }
          events.push(e)
          facts.push(e)
        }
        // a revoked token: stop with a clear reason instead of failing every update
        if (outcome.some((e) => e._tag === "BotApiCallFailed" && e.errorCode === 401)) this.stopReason ??= UNAUTHORIZED_REASON
      }
      // commands (config, stop) take effect between inputs, not after the whole batch
      if (this.commands.length > 0 || this.stopReason !== null) break
    }
    if (events.length > 0) await record()
  }

  /** Appends events that are not decisions (call outcomes): whatever else was appended meanwhile, they stand. */
  private async appendFacts(facts: ReadonlyArray<NewEvent>) {
    for (let attempt = 0; ; attempt++) {
      const r = await this.appendFenced(facts)
      if (Either.isRight(r)) {
        for (const e of facts) this.state = evolve(this.state, e.data)
        this.version = r.right
        return
      }
      if (attempt >= 5) throw r.left
      await this.catchUp()
    }
  }

  /** Sends one recorded intent through the node's Bot API port; the events say how it ended. */
  private async execute(state: BotState, intent: EventOf<"BotApiCallIntended">): Promise<ReadonlyArray<DomainEvent>> {
    if (!this.deps.executeCall) {
      return [{ _tag: "BotApiCallFailed", callId: intent.callId, errorCode: 0, description: "this actor has no Bot API client: nothing was sent" }]
    }
    this.callingSince = this.now()
    try {
      return await this.deps.executeCall(this.botId, state, intent)
    } finally {
      this.callingSince = null
    }
  }

  private async decide(input: BotInput, guarded: boolean, state: BotState = this.state): Promise<ReadonlyArray<DomainEvent>> {
    if (!guarded) return this.decider.decide(input, state)
    this.busySince = this.now()
    const budget = this.config.inputBudgetMs ?? 10_000
    let timer: ReturnType<typeof setTimeout> | undefined
    try {
      const decided = this.decider.decide(input, state)
      if (!(typeof (decided as PromiseLike<unknown>).then === "function")) return decided as ReadonlyArray<DomainEvent>
      return await Promise.race([
        decided,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new HandlerFailed({ reason: `the handler took longer than its ${budget} ms budget` })), budget)
        })
      ])
    } catch (e) {
      throw e instanceof HandlerFailed ? e : new HandlerFailed({ reason: errorText(e) })
    } finally {
      clearTimeout(timer)
      this.busySince = null
    }
  }

  /** Decides, appends with version + fence, and only then evolves. Retries after a concurrent append. */
  private async apply(input: BotInput, actor: string, correlationId = `${input._tag}:${this.botId}`, snapshotNow = true) {
    for (let attempt = 0; ; attempt++) {
      const events = await this.decide(input, false)
      if (events.length === 0) return
      const at = "at" in input ? input.at : this.iso()
      const news: NewEvent[] = events.map((data) => ({ data, occurredAt: at, correlationId, causationId: null, actor }))
      const r = await this.appendFenced(news)
      if (Either.isRight(r)) {
        for (const e of events) this.state = evolve(this.state, e)
        this.version = r.right
        if (snapshotNow) await this.snapshotIfDue()
        return
      }
      if (attempt >= 5) throw r.left
      await this.catchUp()
    }
  }

  /**
   * Appends at our version with the lease's fence: the new version, or the conflict when another
   * writer appended first (the caller catches up). A stale fence is another node's lease: LeaseLost.
   */
  private async appendFenced(events: ReadonlyArray<NewEvent>): Promise<Either.Either<number, WrongExpectedVersion>> {
    if (this.killedFor !== null) throw new Error(`actor ${this.botId} was killed: ${this.killedFor}`)
    const r = await run(Effect.either(this.deps.log.append({ botId: this.botId, expectedVersion: this.version, fence: this.config.fence, events })))
    if (Either.isRight(r)) return Either.right(r.right.version)
    const err = r.left
    if (err._tag === "StaleFence") throw new LeaseLost({ botId: this.botId, fence: err.fence, current: err.current })
    if (err._tag === "WrongExpectedVersion") return Either.left(err)
    throw err
  }

  private async snapshotIfDue() {
    if (this.version - this.snapshotVersion >= (this.config.snapshotEvery ?? 100)) await this.snapshot()
  }

  private async snapshot() {
    if (this.version === this.snapshotVersion) return
    const version = this.version
    await run(this.deps.snapshots.save(this.botId, { version, schemaVersion: SNAPSHOT_SCHEMA_VERSION, state: encodeState(this.state) }))
    this.snapshotVersion = version
    if (this.state.inboxCursor !== null) await run(this.deps.inbox.trim(this.botId, this.state.inboxCursor))
  }
}

/** The bot's handler failed (threw, or ran past its budget) on one input. */
export class HandlerFailed extends Data.TaggedError("HandlerFailed")<{ readonly reason: string }> {}
