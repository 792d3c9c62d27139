import { Effect, Fiber, Redacted } from "effect"
import type { ActorDeps, ActorHealth } from "../actors/actor.js"
import { ActorDied } from "../actors/host.js"
import type { ActorHandle, ActorHost } from "../actors/host.js"
import { makeInProcessHost } from "../actors/inProcessHost.js"
import type { EventLogService } from "../events/eventLog.js"
import { makeBotApi } from "../telegram/botApi.js"
import type { BotApi } from "../telegram/botApi.js"
import { registerWebhook } from "../telegram/ingress.js"
import { UNAUTHORIZED_REASON } from "../telegram/botRunner.js"
import { startOutboxRunner } from "../telegram/outboxRunner.js"
import type { OutboxRunner } from "../telegram/outboxRunner.js"
import { runPoller } from "../telegram/poller.js"
import type { OffsetStore } from "../telegram/poller.js"
import type { Sender } from "../telegram/sender.js"
import type { TokenVault } from "../telegram/tokenVault.js"
import { loadBotProfile } from "./botProfile.js"
import type { BotProfile } from "./botProfile.js"

export interface TelegramHostOptions {
  /** The actor's ports; `log` here is the plain log (the host wraps it to wake outboxes). */
  readonly deps: ActorDeps
  readonly vault: TokenVault
  readonly sender: Sender
  readonly offsets: OffsetStore
  /** Bot API root for a bot of this mode (sandbox bots talk to the local sandbox). */
  readonly apiRootFor: (mode: BotProfile["mode"]) => string
  /**
   * Where sandbox bots' webhooks point (the ingress) and with which secret; absent: sandbox bots
   * are not registered (their updates wait in the sandbox).
   */
  readonly sandboxWebhook?: { readonly publicUrl: string; readonly secretFor: (botId: string) => string }
  /**
   * Where Telegram reaches this node's ingress (PUBLIC_URL), for webhook-mode bots; absent: a
   * webhook-mode bot fails to start with a reason naming PUBLIC_URL (the supervisor gives up on it
   * visibly instead of running a bot that can never receive an update).
   */
  readonly publicWebhook?: { readonly publicUrl: string; readonly secretFor: (botId: string) => string }
  /** Called once a bot's profile is known, before its webhook is set (the sandbox creates the bot). */
  readonly onProfile?: (profile: BotProfile) => void
  readonly onError?: (botId: string, e: unknown) => void
}

/** The update types bots of the fleet handle; Telegram sends nothing else to their webhook. */
const WEBHOOK_UPDATES = ["message", "edited_message", "callback_query", "inline_query", "my_chat_member"] as const

const errorName = (e: unknown) => {
  const err = e as { _tag?: string; name?: string } | null
  return err?._tag ?? err?.name ?? "Error"
}
const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e))

/**
 * The in-process actor host with each bot's Telegram side around its actor: the bot's token is
 * opened, its webhook set (sandbox bots) or a long poller started (polling bots), and the outbox
 * runner started BEFORE the actor (it first closes out calls a previous holder left without
 * outcome: see outboxRunner.ts), then stopped AFTER the actor drained, so the actor's last intents
 * are still sent. The actor's appends wake its outbox at once. Any failure to prepare a bot ends
 * its run as ActorDied, which the supervisor retries with backoff and finally gives up on.
 */
export const makeTelegramHost = (o: TelegramHostOptions): ActorHost => {
  const outboxes = new Map<string, OutboxRunner>()
  const log: EventLogService = {
    ...o.deps.log,
    append: (req) =>
      o.deps.log.append(req).pipe(
        Effect.tap(() =>
          Effect.sync(() => (req.events.some((e) => e.data._tag === "BotApiCallIntended") ? outboxes.get(req.botId)?.wake() : undefined))
        )
      )
  }
  const inner = makeInProcessHost({ ...o.deps, log })
  const live = new Set<Promise<unknown>>()

  /** A revoked token stops the bot with a clear reason (BotStopped): no restart loop of 401s. */
  const unauthorized = new Map<string, () => void>()

  const prepare = async (botId: string, fence: number) => {
    const profile = await Effect.runPromise(loadBotProfile(o.deps.log, o.vault, botId))
    o.onProfile?.(profile)
    const api: BotApi = makeBotApi(Redacted.value(profile.token), { apiRoot: o.apiRootFor(profile.mode) })
    if (profile.mode === "sandbox" && o.sandboxWebhook) {
      await Effect.runPromise(registerWebhook(api, { publicUrl: o.sandboxWebhook.publicUrl, botId, secret: o.sandboxWebhook.secretFor(botId) }))
    }
    if (profile.mode === "webhook") {
      if (!o.publicWebhook) throw new Error(`bot ${botId} is in webhook mode but PUBLIC_URL is not set: Telegram has nowhere to send its updates`)
      await Effect.runPromise(
        registerWebhook(api, { publicUrl: o.publicWebhook.publicUrl, botId, secret: o.publicWebhook.secretFor(botId), allowedUpdates: WEBHOOK_UPDATES })
      )
    }
    const outbox = await startOutboxRunner({
      log: o.deps.log,
      botId,
      fence,
      sender: o.sender,
      call: api.call,
      idlePollMs: 1000,
      onError: (e) => o.onError?.(botId, e),
      onUnauthorized: () => unauthorized.get(botId)?.()
    })
    outboxes.set(botId, outbox)
    return { profile, api, outbox }
  }

  return {
    start: (spec) => {
      const ready = prepare(spec.botId, spec.fence)
      let handle: ActorHandle | null = null
      const started = ready.then(({ profile, api }) => {
        const h = inner.start(spec)
        handle = h
        const stop = () => void h.send({ _tag: "Stop", reason: UNAUTHORIZED_REASON }).catch(() => undefined)
        unauthorized.set(spec.botId, stop)
        const poller =
          profile.mode === "polling"
            ? Effect.runFork(
                runPoller({
                  botId: spec.botId,
                  api,
                  offsets: o.offsets,
                  deliver: (updates) => Effect.forEach(updates, (u) => o.deps.inbox.enqueue(spec.botId, u), { discard: true }),
                  onError: (e) => o.onError?.(spec.botId, e)
                }).pipe(Effect.catchTag("PollingUnauthorized", () => Effect.sync(stop)))
              )
            : null
        return { handle, poller }
      })
      const done = started
        .then(
          ({ handle: h, poller }) =>
            h.done.finally(async () => {
              if (poller) await Effect.runPromise(Fiber.interrupt(poller))
            }),
          (e: unknown) => {
            throw new ActorDied({ botId: spec.botId, where: "actor", name: errorName(e), reason: errorMessage(e) })
          }
        )
        .finally(async () => {
          unauthorized.delete(spec.botId)
          const outbox = outboxes.get(spec.botId)
          const mine = await ready.then((r) => r.outbox, () => null)
          if (mine) {
            if (outbox === mine) outboxes.delete(spec.botId)
            await mine.stop()
          }
        })
      live.add(done)
      done.then(() => live.delete(done), () => live.delete(done))
      const idle: ActorHealth = { beatAt: 0, busySince: null }
      return {
        botId: spec.botId,
        started: Promise.race([started.then(({ handle: h }) => h.started), done]),
        done,
        send: (command) => started.then(({ handle: h }) => h.send(command)),
        // while preparing (one Bot API call and one stream read), count as alive
        health: () => (handle ? handle.health() : { ...idle, beatAt: Date.now() }),
        abort: (reason) => {
          void started.then(({ handle: h }) => h.abort(reason), () => undefined)
        }
      }
    },
    close: async () => {
      await Promise.allSettled([...live])
      await inner.close()
    }
  }
}
