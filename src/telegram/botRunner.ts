import { Effect, Fiber } from "effect"
import { BotActor, UNAUTHORIZED_REASON } from "../actors/actor.js"
import type { ActorDeps, ActorStatus, CallExecutor } from "../actors/actor.js"
import { makeBotApi } from "./botApi.js"
import { registerWebhook } from "./ingress.js"
import { runPoller } from "./poller.js"
import type { OffsetStore } from "./poller.js"
import { executeIntent } from "./recordedCalls.js"
import type { Sender } from "./sender.js"
import { withModelCalls } from "../ai/modelCalls.js"
import type { ModelCallOptions } from "../ai/modelCalls.js"

/**
 * One bot run directly (no supervisor) with its Telegram side: the lease, the webhook or the
 * poller, and the actor, which sends its own Bot API calls. For tests and tools; a node runs its
 * bots through the supervisor and the Telegram host (src/runtime/telegramHost.ts).
 */
export interface RunningBot {
  readonly botId: string
  readonly fence: number
  /** Resolves when the actor stopped (after `stop`, or on a failure). */
  readonly done: Promise<ActorStatus>
  /** Drains: the actor finishes its input in hand (its calls included) and records BotStopped. */
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
  /** Where AI bots' model calls go (none: such calls fail as not configured, and the bot falls back). */
  readonly model?: ModelCallOptions
  readonly leaseTtlMs?: number
  readonly onError?: (e: unknown) => void
  /** Webhook mode: `setWebhook` to `<publicUrl>/telegram/<botId>` with the bot's secret before the actor starts. */
  readonly webhook?: { readonly publicUrl: string; readonly secret: string; readonly allowedUpdates?: ReadonlyArray<string> }
  /** Polling mode: this node (the lease holder) long-polls into the bot's inbox; the offset is kept in `offsets`. */
  readonly polling?: { readonly offsets: OffsetStore; readonly timeoutS?: number; readonly allowedUpdates?: ReadonlyArray<string> }
}

export { UNAUTHORIZED_REASON }

export class LeaseBusy extends Error {
  constructor(readonly botId: string) {
    super(`bot ${botId}: another node holds the lease`)
  }
}

export const runBot = async (o: RunBotOptions): Promise<RunningBot> => {
  const lease = await Effect.runPromise(o.deps.log.acquireLease(o.botId, o.nodeId, o.leaseTtlMs ?? 60_000))
  if (!lease) throw new LeaseBusy(o.botId)
  const api = makeBotApi(o.token, { apiRoot: o.apiRoot })
  // the actor sends its own calls: intent recorded, then sent through the sender, then the outcome
  const botCalls: CallExecutor = (botId, _state, intent) =>
    executeIntent(intent, { botKey: botId, sender: o.sender, call: api.call, now: () => new Date().toISOString() })
  const executeCall = o.model ? withModelCalls(botCalls, o.model) : botCalls
  const actor = new BotActor({ ...o.deps, executeCall }, { botId: o.botId, nodeId: o.nodeId, fence: lease.fence, idleWaitMs: 500 })
  if (o.webhook) {
    await Effect.runPromise(registerWebhook(api, { publicUrl: o.webhook.publicUrl, botId: o.botId, secret: o.webhook.secret, ...(o.webhook.allowedUpdates ? { allowedUpdates: o.webhook.allowedUpdates } : {}) }))
  }
  const poller = o.polling
    ? Effect.runFork(
        runPoller({
          botId: o.botId,
          api,
          offsets: o.polling.offsets,
          ...(o.polling.timeoutS !== undefined ? { timeoutS: o.polling.timeoutS } : {}),
          ...(o.polling.allowedUpdates ? { allowedUpdates: o.polling.allowedUpdates } : {}),
          ...(o.onError ? { onError: o.onError } : {}),
          // one update at a time, in order: each is durably in the inbox before the offset moves
          deliver: (updates) => Effect.forEach(updates, (u) => o.deps.inbox.enqueue(o.botId, u), { discard: true })
        }).pipe(
          // a refused token ends polling: the bot stops with the reason instead of looping; so does a lasting 409
          Effect.catchAll((e) =>
            Effect.sync(() => {
              if (e._tag === "PollingConflict") o.onError?.(e)
              void actor.send({ _tag: "Stop", reason: e._tag === "PollingConflict" ? e.message : UNAUTHORIZED_REASON }).catch(() => undefined)
            })
          )
        )
      )
    : null
  let finished = false
  const done = actor.run().finally(() => {
    finished = true
  })
  return {
    botId: o.botId,
    fence: lease.fence,
    done,
    stop: async (reason = "stop requested") => {
      // an actor that already stopped takes no more commands: do not wait on one
      if (poller) await Effect.runPromise(Fiber.interrupt(poller))
      if (!finished) await Promise.race([actor.send({ _tag: "Stop", reason }).catch(() => undefined), done.catch(() => undefined)])
      await done.catch(() => undefined)
      await Effect.runPromise(Effect.ignore(o.deps.log.releaseLease(lease)))
    }
  }
}
