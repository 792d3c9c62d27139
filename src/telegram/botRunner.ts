import { Effect } from "effect"
import { BotActor } from "../actors/actor.js"
import type { ActorDeps, ActorStatus } from "../actors/actor.js"
import { makeBotApi } from "./botApi.js"
import { startOutboxRunner } from "./outboxRunner.js"
import type { OutboxRunner } from "./outboxRunner.js"
import type { Sender } from "./sender.js"

/**
 * One bot on this node with its Telegram side: the lease, then the outbox runner (which first
 * closes out calls a previous holder left without outcome), then the actor. The order matters:
 * see outboxRunner.ts. The supervisor can do the same composition; this is the seam it plugs.
 */
export interface RunningBot {
  readonly botId: string
  readonly fence: number
  readonly outbox: OutboxRunner
  /** Resolves when the actor stopped (after `stop`, or on a failure). */
  readonly done: Promise<ActorStatus>
  /** Drains: the actor finishes its input in hand and records BotStopped, then the outbox stops. */
  readonly stop: (reason?: string) => Promise<void>
}

export interface RunBotOptions {
  readonly deps: ActorDeps
  readonly botId: string
  readonly nodeId: string
  /** The bot's token in clear, held only in the Bot API client's closure. */
  readonly token: string
  readonly apiRoot: string
  readonly sender: Sender
  readonly leaseTtlMs?: number
  readonly onError?: (e: unknown) => void
}

export const UNAUTHORIZED_REASON = "Telegram refused the bot's token (401): revoked or replaced; register the new token to restart"

export class LeaseBusy extends Error {
  constructor(readonly botId: string) {
    super(`bot ${botId}: another node holds the lease`)
  }
}

export const runBot = async (o: RunBotOptions): Promise<RunningBot> => {
  const lease = await Effect.runPromise(o.deps.log.acquireLease(o.botId, o.nodeId, o.leaseTtlMs ?? 60_000))
  if (!lease) throw new LeaseBusy(o.botId)
  const api = makeBotApi(o.token, { apiRoot: o.apiRoot })
  const outbox = await startOutboxRunner({
    log: o.deps.log,
    botId: o.botId,
    fence: lease.fence,
    sender: o.sender,
    call: api.call,
    // woken by the actor's appends (below); the idle read only catches appends from elsewhere
    idlePollMs: 1000,
    ...(o.onError ? { onError: o.onError } : {}),
    // a revoked token stops the bot with a clear reason (BotStopped), not a loop of failures
    onUnauthorized: () => {
      if (!finished) void actorRef?.send({ _tag: "Stop", reason: UNAUTHORIZED_REASON }).catch(() => undefined)
    }
  })
  let actorRef: BotActor | null = null
  // the actor's log, telling the outbox the moment an append with intents succeeded
  const log = {
    ...o.deps.log,
    append: (req: Parameters<typeof o.deps.log.append>[0]) =>
      o.deps.log.append(req).pipe(
        Effect.tap(() => Effect.sync(() => (req.events.some((e) => e.data._tag === "BotApiCallIntended") ? outbox.wake() : undefined)))
      )
  }
  const actor = new BotActor({ ...o.deps, log }, { botId: o.botId, nodeId: o.nodeId, fence: lease.fence, idleWaitMs: 500 })
  actorRef = actor
  let finished = false
  const done = actor.run().finally(() => {
    finished = true
  })
  return {
    botId: o.botId,
    fence: lease.fence,
    outbox,
    done,
    stop: async (reason = "stop requested") => {
      // an actor that already stopped takes no more commands: do not wait on one
      if (!finished) await Promise.race([actor.send({ _tag: "Stop", reason }).catch(() => undefined), done.catch(() => undefined)])
      await done.catch(() => undefined)
      await outbox.stop()
      await Effect.runPromise(Effect.ignore(o.deps.log.releaseLease(lease)))
    }
  }
}
