import { Effect, Fiber, Redacted } from "effect"
import type { ActorHealth } from "../actors/actor.js"
import { UNAUTHORIZED_REASON } from "../actors/actor.js"
import { ActorDied } from "../actors/host.js"
import type { ActorHandle, ActorHost } from "../actors/host.js"
import type { InboxService } from "../actors/inbox.js"
import type { SnapshotStoreService } from "../actors/snapshotStore.js"
import type { EventLogService } from "../events/eventLog.js"
import { countUpdateAccepted, observeActivation } from "../metrics/registry.js"
import { makeBotApi } from "../telegram/botApi.js"
import type { BotApi } from "../telegram/botApi.js"
import { registerWebhook } from "../telegram/ingress.js"
import { runPoller } from "../telegram/poller.js"
import type { OffsetStore } from "../telegram/poller.js"
import type { TokenVault } from "../telegram/tokenVault.js"
import { loadBotProfile } from "./botProfile.js"
import type { BotProfile } from "./botProfile.js"

export interface TelegramHostOptions {
  /** Where the actors run (in-process, or the worker pool); their Bot API calls go through their own port. */
  readonly inner: ActorHost
  /** The node's log (bot profiles) and inbox (the poller delivers into it). */
  readonly log: EventLogService
  /** Where a bot's profile starts from (its newest snapshot), so preparing it reads only the events after. */
  readonly snapshots?: SnapshotStoreService
  readonly inbox: InboxService
  readonly vault: TokenVault
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
 * An actor host with each bot's Telegram side around its actor: the bot's token is opened, its
 * webhook set (sandbox and webhook bots) or a long poller started (polling bots, run only while
 * this node holds the lease), then the actor starts on the inner host. The actor sends its own
 * Bot API calls (recorded intent, then outcome). Any failure to prepare a bot ends its run as
 * ActorDied, which the supervisor retries with backoff and finally gives up on.
 */
export const makeTelegramHost = (o: TelegramHostOptions): ActorHost => {
  const live = new Set<Promise<unknown>>()

  /**
   * Sets the bot's webhook. False when Telegram refuses the token (401): retrying cannot help,
   * so the bot is stopped once (below) instead of crashing at every restart until it gives up.
   */
  const setWebhook = (api: BotApi, args: Parameters<typeof registerWebhook>[1]) =>
    Effect.runPromise(
      registerWebhook(api, args).pipe(
        Effect.as(true),
        Effect.catchIf(
          (e) => e._tag === "TelegramRefused" && e.errorCode === 401,
          () => Effect.succeed(false)
        )
      )
    )

  const prepare = async (botId: string) => {
    const profile = await Effect.runPromise(loadBotProfile(o.log, o.vault, botId, o.snapshots))
    o.onProfile?.(profile)
    const api: BotApi = makeBotApi(Redacted.value(profile.token), { apiRoot: o.apiRootFor(profile.mode) })
    let authorized = true
    if (profile.mode === "sandbox" && o.sandboxWebhook) {
      authorized = await setWebhook(api, { publicUrl: o.sandboxWebhook.publicUrl, botId, secret: o.sandboxWebhook.secretFor(botId) })
    }
    if (profile.mode === "webhook") {
      if (!o.publicWebhook) throw new Error(`bot ${botId} is in webhook mode but PUBLIC_URL is not set: Telegram has nowhere to send its updates`)
      authorized = await setWebhook(api, { publicUrl: o.publicWebhook.publicUrl, botId, secret: o.publicWebhook.secretFor(botId), allowedUpdates: WEBHOOK_UPDATES })
    }
    return { profile, api, authorized }
  }

  return {
    start: (spec) => {
      const startAt = performance.now()
      let handle: ActorHandle | null = null
      let conflict: string | null = null
      const started = prepare(spec.botId).then(({ profile, api, authorized }) => {
        const h = o.inner.start(spec, { ownerId: profile.ownerId, kind: profile.kind })
        handle = h
        // a revoked token stops the bot with a clear reason (BotStopped): no restart loop of 401s.
        // The actor records it (its decider, fence and version): queued before its first input,
        // the stop is what it does first once started, and the supervisor runs it no more
        const stop = () => void h.send({ _tag: "Stop", reason: UNAUTHORIZED_REASON }).catch(() => undefined)
        if (!authorized) {
          o.onError?.(spec.botId, new Error("setWebhook refused the bot's token (401): the bot is stopped until a new token is registered"))
          stop()
        }
        const poller =
          authorized && profile.mode === "polling"
            ? Effect.runFork(
                runPoller({
                  botId: spec.botId,
                  api,
                  offsets: o.offsets,
                  deliver: (updates) =>
                    Effect.forEach(updates, (u) => o.inbox.enqueue(spec.botId, u).pipe(Effect.tap(() => countUpdateAccepted(spec.botId, "polling"))), { discard: true }),
                  onError: (e) => o.onError?.(spec.botId, e)
                }).pipe(
                  Effect.catchTag("PollingUnauthorized", () => Effect.sync(stop)),
                  // updates cannot reach the bot: drain it and end the run as a crash with the reason,
                  // so BotCrashed (and `status`) says why, and the restart deletes the webhook again
                  Effect.catchTag("PollingConflict", (e) =>
                    Effect.sync(() => {
                      conflict = e.message
                      o.onError?.(spec.botId, e)
                      void h.send({ _tag: "Stop", reason: "polling conflict (409)" }).catch(() => undefined)
                    })
                  )
                )
              )
            : null
        return { handle: h, poller }
      })
      started.then(({ handle: h }) => h.started).then(() => observeActivation((performance.now() - startAt) / 1000), () => undefined)
      const done = started.then(
        ({ handle: h, poller }) =>
          h.done
            .finally(async () => {
              if (poller) await Effect.runPromise(Fiber.interrupt(poller))
            })
            .then((status) => {
              if (conflict !== null) throw new ActorDied({ botId: spec.botId, where: "actor", name: "PollingConflict", reason: conflict })
              return status
            }),
        (e: unknown) => {
          throw new ActorDied({ botId: spec.botId, where: "actor", name: errorName(e), reason: errorMessage(e) })
        }
      )
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
      await o.inner.close()
    }
  }
}
