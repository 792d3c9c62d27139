import { Data, Effect, Either } from "effect"
import type { WrongExpectedVersion } from "../events/errors.js"
import type { EventLogService } from "../events/eventLog.js"
import type { DomainEvent, EventOf } from "../events/schema/catalogue.js"
import type { NewEvent } from "../events/schema/envelope.js"
import { planBatch } from "./batchPlan.js"
import { NeedsEntries, makeBotDecider } from "./decider/decide.js"
import { keysOfEvents, keysOfUpdate } from "./decider/entries.js"
import type { BotInput } from "./decider/input.js"
import { evolve } from "./decider/state.js"
import type { BotState, BotStatus } from "./decider/state.js"
import type { UpdateHandler } from "./decider/updateHandler.js"
import type { EventArchiveService } from "./eventArchive.js"
import type { InboxEntry, InboxService } from "./inbox.js"
import { ResidentState } from "./residentState.js"
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
  /** Inbox entries read, and at most decided together, per round (default 64). */
  readonly batchSize?: number
  /**
   * Longest wait for new inbox entries before reading again anyway (default 10 s): only a safety
   * net, since the inbox wakes the actor when entries come; every end of a wait re-issues its
   * partition's blocking read, so a short one made idle bots cost Redis commands.
   */
  readonly idleWaitMs?: number
  /** A handler slower than this fails its update (dead-lettered, default 10 s). */
  readonly inputBudgetMs?: number
  /** Users and sessions kept in memory (default 25,000); the least recently used unchanged ones go past it. */
  readonly maxResidentEntries?: number
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
  /** Users and sessions in memory now. */
  readonly residentEntries?: number
  /** Why the last snapshot could not be written, while it cannot. */
  readonly snapshotError?: string | null
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

/** One inbox entry of a batch while it is being handled. */
interface Item {
  readonly entry: InboxEntry
  readonly correlationId: string
  /** Set once its handler failed: decided as FailUpdate from then on, dead-lettered once. */
  failed: string | null
  done: boolean
}

/** A call a round decided, to send before the next round. */
interface Send {
  readonly item: Item
  readonly intent: EventOf<"BotApiCallIntended">
  /** The state the call was decided in (its chat's user, the bot's token). */
  readonly state: BotState
}

/**
 * One bot's actor: the imperative shell around the pure decider. Its state lives only here, on
 * the thread that runs it.
 *
 * Why it is exactly-once: each inbox entry is decided against the current state, and the events
 * it caused are appended together with `UpdateReceived`/`UpdateDuplicateDropped`/`UpdateFailed`,
 * which carry the entry id: the cursor moves in the same atomic append, checked against the
 * expected version and the lease's fence. The state changes only after the append succeeded. A
 * crash before the append leaves the cursor behind the entries (they are handled again, from the
 * same state); after it, the rehydrated cursor is past them.
 *
 * Why a busy bot keeps up: entries of different conversations are decided together (see
 * batchPlan.ts). Each round decides every open entry of the batch, one after the other against
 * the state the previous decisions left (so the stream reads as if they were decided alone, and
 * replay re-derives each), appends everything decided in ONE append, then sends the round's Bot
 * API calls at the same time and records their outcomes with the next round's decisions. An entry
 * is recorded as handled only after every entry before it, so the cursor never passes an entry
 * still in progress.
 */
export class BotActor {
  private readonly resident: ResidentState
  private readonly decider
  private readonly commands: Array<{ cmd: ActorCommand; resolve: (s: ActorStatus) => void; reject: (e: unknown) => void }> = []
  /** Why `run` failed; null while it runs or after a clean stop. */
  private endedWith: unknown = null
  private wakeCommand: (() => void) | null = null
  private readonly stopWaiters: Array<{ resolve: (s: ActorStatus) => void; reject: (e: unknown) => void }> = []
  private stopReason: string | null = null
  private beatAt: number
  private busySince: number | null = null
  /** Since when the actor waits on Bot API calls (limits, 429s): alive, not stuck in bot code. */
  private callingSince: number | null = null
  private readonly now: () => number
  private killedFor: string | null = null
  /** Hydrated and BotStarted recorded: `status()` tells the truth from here on. */
  private started = false

  constructor(
    private readonly deps: ActorDeps,
    private readonly config: ActorConfig
  ) {
    this.decider = makeBotDecider(deps.handlerFor)
    this.now = deps.now ?? Date.now
    this.beatAt = this.now()
    this.resident = new ResidentState(deps, {
      botId: config.botId,
      fence: config.fence,
      snapshotEvery: config.snapshotEvery ?? 100,
      maxEntries: config.maxResidentEntries ?? 25_000,
      now: this.now
    })
  }

  get botId() {
    return this.config.botId
  }

  private get state() {
    return this.resident.state
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
      version: this.resident.version,
      inboxCursor: s.inboxCursor,
      updatesHandled: s.updatesHandled,
      updatesFailed: s.updatesFailed,
      duplicatesDropped: s.duplicatesDropped,
      config: s.config,
      residentEntries: this.resident.residentEntries,
      snapshotError: this.resident.lastSnapshotError
    }
  }

  /**
   * Queues a command; it runs between batches, never concurrently with one. `Status` is answered at
   * once instead: it only reads the committed state, and waking an idle actor for it cost a
   * re-issued blocking read of its whole partition (the supervisor asks every running bot about
   * once a second, so a node of idle bots spent most of its Redis commands on that).
   */
  send(cmd: ActorCommand): Promise<ActorStatus> {
    return new Promise((resolve, reject) => {
      if (this.endedWith !== null) return reject(this.endedWith)
      // (once started: before that the state is not hydrated yet, and the answer waits for it)
      if (cmd._tag === "Status" && this.started) return resolve(this.status())
      this.commands.push({ cmd, resolve, reject })
      this.wakeCommand?.()
    })
  }

  /**
   * Hydrates, records BotStarted, then handles inbox entries and commands until a Stop command;
   * then drains (the batch in hand finishes), records BotStopped and snapshots. Resolves with
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
    await this.resident.hydrate()
    await this.apply({ _tag: "Start", nodeId: this.config.nodeId, fence: this.config.fence, at: this.iso() }, `node:${this.config.nodeId}`, undefined, false)
    this.started = true
    onStarted?.(this.status())
    // after reporting started: a snapshot due after a long tail must not delay the activation
    await this.resident.snapshotIfDue()
    const batch = this.config.batchSize ?? 64
    let lastRead = batch
    while (this.stopReason === null) {
      if (this.killedFor !== null) throw new Error(`actor ${this.botId} was killed: ${this.killedFor}`)
      this.beatAt = this.now()
      if (this.commands.length > 0) {
        await this.runCommand(this.commands.shift()!)
        continue
      }
      // wait only after a read that found nothing: a bot that just handled entries usually has
      // more by now, and a plain read costs one command where a wait costs its partition's
      // blocking read re-issued (CLIENT UNBLOCK + XREAD, disturbing the other waiters); a bot
      // that found nothing waits, and the wait returns at once with entries that came meanwhile
      const waited = lastRead === 0 ? await this.idle(batch) : undefined
      if (this.commands.length > 0 || this.stopReason !== null) continue
      const entries = waited && waited.length > 0 ? waited : await run(this.deps.inbox.readAfter(this.botId, this.state.inboxCursor, batch))
      lastRead = entries.length
      const planned = planBatch(entries, this.state.inboxCursor, batch)
      if (planned.length === 0) continue
      // a batch cut short by two updates of one conversation: read on at once for the rest
      if (planned.length < entries.length) lastRead = batch
      await this.handleBatch(planned)
      this.resident.evictIfNeeded()
    }
    await this.apply({ _tag: "Stop", nodeId: this.config.nodeId, reason: this.stopReason, at: this.iso() }, `node:${this.config.nodeId}`)
    await this.resident.snapshot()
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
      Effect.raceFirst(this.deps.inbox.waitFor(this.botId, this.state.inboxCursor, this.config.idleWaitMs ?? 10_000, count), woken).pipe(
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

  /**
   * Handles one planned batch in rounds (see the class comment). A round decides the open entries
   * in order against a provisional state and appends the decisions in ONE append: an entry whose
   * handler awaits a Bot API call contributes the call's intent; an entry that is finished
   * contributes its `UpdateReceived` and the events it caused, unless an earlier entry is still
   * open (then it is decided again next round, after that one). The round's calls are then sent
   * together, and their outcomes open the next round's append. If an append is refused because
   * another writer appended (a config change), the outcomes already known are recorded on their
   * own and the round is decided again from the new state.
   */
  private async handleBatch(entries: ReadonlyArray<InboxEntry>) {
    const items: Item[] = entries.map((entry) => ({ entry, correlationId: `inbox:${entry.id}`, failed: null, done: false }))
    const keys = new Set<string>()
    for (const entry of entries) for (const k of keysOfUpdate(entry.update)) keys.add(k)
    await this.resident.ensureLoaded(keys)
    /** Outcomes of calls already sent and not yet appended: facts that must not be lost. */
    let facts: NewEvent[] = []
    for (;;) {
      // the entries the outcomes touch (a user who blocked the bot) may have been dropped by a catch-up
      if (facts.length > 0) await this.resident.ensureLoaded(keysOfEvents(facts.map((f) => f.data)))
      let state = this.state
      const events: NewEvent[] = []
      for (const f of facts) {
        state = evolve(state, f.data)
        events.push(f)
      }
      const sends: Send[] = []
      let open = false
      for (const item of items) {
        if (item.done) continue
        const decided = await this.decideItem(item, state, (loaded) => (state = loaded))
        const last = decided[decided.length - 1]
        const calls = last?._tag === "BotApiCallIntended"
        // recorded as handled only after every entry before it: the cursor never passes one in progress
        if (!calls && open) continue
        const actor = item.failed !== null ? "system" : userActor(item.entry.update)
        for (const data of decided) {
          state = evolve(state, data)
          events.push({ data, occurredAt: item.entry.receivedAt, correlationId: item.correlationId, causationId: null, actor })
        }
        if (calls) {
          open = true
          sends.push({ item, intent: last, state })
        } else item.done = true
      }
      if (events.length === 0) return
      const appended = await this.appendFenced(events)
      if (Either.isLeft(appended)) {
        // someone else appended (e.g. a config change): fold it in, record what was learned from
        // Telegram on its own, and decide the open entries again from there
        this.reopen(items, events)
        await this.resident.catchUp()
        if (facts.length > 0) await this.appendFacts(facts)
        facts = []
        continue
      }
      this.resident.commit(events.map((e) => e.data), state, appended.right)
      await this.resident.snapshotIfDue()
      facts = []
      if (sends.length === 0) return
      facts = await this.sendAll(sends)
      // a revoked token: stop with a clear reason instead of failing every update
      if (facts.some((e) => e.data._tag === "BotApiCallFailed" && e.data.errorCode === 401)) this.stopReason ??= UNAUTHORIZED_REASON
    }
  }

  /** Entries marked done by a round whose append was refused are not done. */
  private reopen(items: ReadonlyArray<Item>, refused: ReadonlyArray<NewEvent>) {
    const finished = new Set(refused.filter((e) => e.data._tag === "UpdateReceived" || e.data._tag === "UpdateFailed" || e.data._tag === "UpdateDuplicateDropped").map((e) => e.correlationId))
    for (const item of items) if (finished.has(item.correlationId)) item.done = false
  }

  /**
   * Decides one entry against `state`. Entries it needs that are not resident are loaded (into the
   * committed state and, through `onLoaded`, the provisional one) and it is decided again. A
   * handler that fails (throws, runs past its budget) dead-letters the entry once and it is
   * recorded as failed; the bot goes on with the next entry.
   */
  private async decideItem(item: Item, state0: BotState, onLoaded: (s: BotState) => void): Promise<ReadonlyArray<DomainEvent>> {
    let state = state0
    const { entry } = item
    for (;;) {
      if (item.failed !== null) return this.decide({ _tag: "FailUpdate", inboxId: entry.id, update: entry.update, reason: item.failed, at: entry.receivedAt }, false, state)
      try {
        return await this.decide({ _tag: "HandleUpdate", inboxId: entry.id, update: entry.update, at: entry.receivedAt }, true, state)
      } catch (e) {
        if (e instanceof NeedsEntries) {
          state = (await this.resident.ensureLoaded(e.keys, state))!
          onLoaded(state)
          continue
        }
        if (!(e instanceof HandlerFailed)) throw e
        // dead letter first: a crash before the append re-runs the handler (at-least-once in the
        // dead-letter stream), never loses the reason
        await run(this.deps.inbox.deadLetter(this.botId, entry, e.reason))
        item.failed = e.reason
      }
    }
  }

  /**
   * Sends the round's calls together (the sender keeps each chat's calls in order and the bot's
   * limits) and returns the events recording how each ended, in the order the calls were decided.
   */
  private async sendAll(sends: ReadonlyArray<Send>): Promise<NewEvent[]> {
    this.callingSince = this.now()
    let outcomes: ReadonlyArray<ReadonlyArray<DomainEvent>>
    try {
      outcomes = await Promise.all(sends.map((s) => this.execute(s.state, s.intent)))
    } finally {
      this.callingSince = null
    }
    const at = this.iso()
    const facts: NewEvent[] = []
    let head: string | null | undefined
    for (let i = 0; i < sends.length; i++) {
      for (let data of outcomes[i]!) {
        if (data._tag === "UserBlockedBot" && data.afterEntry === undefined) {
          // the newest inbox entry now: the user's messages after it were written after the block
          head ??= await run(this.deps.inbox.headId(this.botId).pipe(Effect.orElseSucceed(() => null)))
          const after = head ?? this.state.inboxCursor
          if (after !== null) data = { ...data, afterEntry: after }
        }
        facts.push({ data, occurredAt: at, correlationId: sends[i]!.item.correlationId, causationId: null, actor: "system" })
      }
    }
    return facts
  }

  /** Appends events that are not decisions (call outcomes): whatever else was appended meanwhile, they stand. */
  private async appendFacts(facts: ReadonlyArray<NewEvent>) {
    for (let attempt = 0; ; attempt++) {
      const r = await this.appendFenced(facts)
      if (Either.isRight(r)) {
        const data = facts.map((e) => e.data)
        await this.resident.ensureLoaded(keysOfEvents(data))
        this.resident.commit(data, data.reduce(evolve, this.state), r.right)
        return
      }
      if (attempt >= 5) throw r.left
      await this.resident.catchUp()
    }
  }

  /** Sends one recorded intent through the node's Bot API port; the events say how it ended. */
  private async execute(state: BotState, intent: EventOf<"BotApiCallIntended">): Promise<ReadonlyArray<DomainEvent>> {
    if (!this.deps.executeCall) {
      return [{ _tag: "BotApiCallFailed", callId: intent.callId, errorCode: 0, description: "this actor has no Bot API client: nothing was sent" }]
    }
    return this.deps.executeCall(this.botId, state, intent)
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
      if (e instanceof NeedsEntries) throw e
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
        this.resident.commit(events, events.reduce(evolve, this.state), r.right)
        if (snapshotNow) await this.resident.snapshotIfDue()
        return
      }
      if (attempt >= 5) throw r.left
      await this.resident.catchUp()
    }
  }

  /**
   * Appends at our version with the lease's fence: the new version, or the conflict when another
   * writer appended first (the caller catches up). A stale fence is another node's lease: LeaseLost.
   */
  private async appendFenced(events: ReadonlyArray<NewEvent>): Promise<Either.Either<number, WrongExpectedVersion>> {
    if (this.killedFor !== null) throw new Error(`actor ${this.botId} was killed: ${this.killedFor}`)
    const r = await run(Effect.either(this.deps.log.append({ botId: this.botId, expectedVersion: this.resident.version, fence: this.config.fence, events })))
    if (Either.isRight(r)) return Either.right(r.right.version)
    const err = r.left
    if (err._tag === "StaleFence") throw new LeaseLost({ botId: this.botId, fence: err.fence, current: err.current })
    if (err._tag === "WrongExpectedVersion") return Either.left(err)
    throw err
  }
}

/** The bot's handler failed (threw, or ran past its budget) on one input. */
export class HandlerFailed extends Data.TaggedError("HandlerFailed")<{ readonly reason: string }> {}
