import { hostname } from "node:os"
import { Data, Effect } from "effect"
import { InputRejected, makeBotDecider } from "../../actors/decider/decide.js"
import type { BotInput } from "../../actors/decider/input.js"
import type { BotState } from "../../actors/decider/state.js"
import { echoHandler } from "../../actors/decider/updateHandler.js"
import type { EventLogService } from "../../events/eventLog.js"
import { sendControl } from "../../runtime/control.js"
import { foldBot } from "./botRows.js"

/*
 * How the CLI changes a bot: the same decider the actor runs decides the input against the state
 * folded from the stream, and the events are appended under the bot's lease with its fence. While
 * a node runs the bot it holds the lease, so the CLI cannot take it: it asks that node over the
 * control channel (runtime/control.ts), whose actor applies the command. One writer per bot at
 * any time, as everywhere else.
 */

/** Who the CLI is when it holds a lease: never a node's id, so it never takes a node's lease as "ours". */
export const cliLeaseOwner = (): string => `cli:${hostname()}:${process.pid}`

/** A node holds the bot's lease: it runs the bot, and only it may append to its stream now. */
export class BotHeldByNode extends Data.TaggedError("BotHeldByNode")<{ readonly botId: string; readonly nodeId: string; readonly expiresAt: number }> {
  override get message() {
    return (
      `bot ${this.botId} is running on node ${this.nodeId} (its lease runs until ${new Date(this.expiresAt).toISOString()}): the CLI changes a bot only while no node runs it.\n` +
      `Stop that node (or wait for the lease to expire after a crash), then run the command again.`
    )
  }
}

/** The bot has no events: nothing to change. */
export class UnknownBot extends Data.TaggedError("UnknownBot")<{ readonly botId: string }> {
  override get message() {
    return `bot ${this.botId} is not registered: check the id (botfleet bots list), or add it (botfleet bots add)`
  }
}

export interface Applied {
  readonly botId: string
  /** Event types appended (empty: the bot was already in the asked state). */
  readonly events: ReadonlyArray<string>
  readonly version: number
  /** The node that applied it, when a node was running the bot (the control channel); absent: the CLI appended itself. */
  readonly node?: string
}

const LIFECYCLE = new Set(["BotConfigChanged", "BotStopped", "BotRemoved", "BotTokenRotated"])

/**
 * While a node runs the bot (BotHeldByNode), asks that node over the control channel (production
 * mode) to apply the command through the bot's actor, and reports what it recorded. Without
 * Redis (embedded mode: one process owns the data) the BotHeldByNode error stands.
 */
const applyViaNode = (o: {
  readonly log: EventLogService
  readonly held: BotHeldByNode
  readonly control: { readonly redisUrl: string; readonly prefix: string; readonly timeoutMs?: number } | null
  readonly request: Parameters<typeof sendControl>[1]
  /** Records the command here, once the node released the bot (it held the lease with no actor running). */
  readonly local: Effect.Effect<Applied, unknown>
}) =>
  Effect.gen(function* () {
    if (o.control === null) return yield* o.held
    const before = yield* o.log.streamVersion(o.held.botId)
    const r = yield* sendControl({ ...o.control, nodeId: o.held.nodeId }, o.request)
    if (r.released) return yield* o.local
    const after = yield* o.log.readStream(o.held.botId, { from: before + 1 })
    const mine = after.filter((e) => LIFECYCLE.has(e.data._tag) && e.actor !== "ops:cli")
    return { botId: o.held.botId, events: mine.map((e) => e.data._tag), version: r.version ?? before, node: o.held.nodeId } satisfies Applied
  })

const decider = makeBotDecider(() => echoHandler)

/**
 * Decides `input` (built from the current state) for a registered bot and appends the events
 * under its lease, fenced and at the version folded. Fails with BotHeldByNode while a node runs
 * it, UnknownBot for a bot without events, InputRejected when the decider refuses.
 */
export const applyInput = (o: {
  readonly log: EventLogService
  readonly botId: string
  readonly input: (state: BotState, leaseOwner: string) => BotInput
  readonly actor: string
}) =>
  Effect.gen(function* () {
    const owner = cliLeaseOwner()
    const lease = yield* o.log.acquireLease(o.botId, owner, 15_000)
    if (lease === null) {
      const held = yield* o.log.readLease(o.botId)
      return yield* new BotHeldByNode({ botId: o.botId, nodeId: held?.nodeId ?? "(unknown)", expiresAt: held?.expiresAt ?? Date.now() })
    }
    return yield* Effect.gen(function* () {
      const { state, version } = yield* foldBot(o.log, o.botId)
      if (version === 0) return yield* new UnknownBot({ botId: o.botId })
      const input = o.input(state, owner)
      const events = yield* Effect.tryPromise({
        try: async () => decider.decide(input, state),
        catch: (e) => (e instanceof InputRejected ? e : new InputRejected({ input: input._tag, reason: String(e) }))
      })
      if (events.length === 0) return { botId: o.botId, events: [], version } satisfies Applied
      const occurredAt = new Date().toISOString()
      const result = yield* o.log.append({
        botId: o.botId,
        expectedVersion: version,
        fence: lease.fence,
        events: events.map((data) => ({ data, occurredAt, correlationId: `cli:${input._tag}:${o.botId}:${occurredAt}`, actor: o.actor }))
      })
      return { botId: o.botId, events: events.map((e) => e._tag), version: result.version } satisfies Applied
    }).pipe(Effect.ensuring(Effect.ignore(o.log.releaseLease(lease))))
  })

/**
 * How the CLI changes a bot: itself under the bot's lease (applyInput) when no node holds it;
 * otherwise through the node that does (applyViaNode), which records nothing when it held the
 * lease with no actor running: it releases the bot and the CLI records the change itself.
 */
export const applyOrAskNode = (
  o: Parameters<typeof applyInput>[0] & {
    readonly control: { readonly redisUrl: string; readonly prefix: string; readonly timeoutMs?: number } | null
    readonly request: Parameters<typeof sendControl>[1]
  }
) => applyInput(o).pipe(Effect.catchTag("BotHeldByNode", (held) => applyViaNode({ log: o.log, held, control: o.control, request: o.request, local: applyInput(o) })))
