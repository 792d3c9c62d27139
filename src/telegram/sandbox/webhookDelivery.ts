import type { SandboxBot, Update } from "./world.js"

/** The kind of an update (`message`, `callback_query`...), what `allowed_updates` filters on. */
export const updateKind = (u: Update): string => Object.keys(u).find((k) => k !== "update_id") ?? "unknown"

/** Telegram delivers these when `allowed_updates` is empty or absent. */
const DEFAULT_KINDS = new Set(["message", "edited_message", "channel_post", "edited_channel_post", "callback_query", "inline_query", "chosen_inline_result", "shipping_query", "pre_checkout_query", "poll", "poll_answer", "my_chat_member", "chat_join_request", "business_message"])

export const isAllowed = (u: Update, allowed: ReadonlyArray<string> | undefined): boolean =>
  allowed && allowed.length > 0 ? allowed.includes(updateKind(u)) : DEFAULT_KINDS.has(updateKind(u))

/**
 * Delivers each bot's pending updates to its webhook, one at a time and in order, with the
 * `X-Telegram-Bot-Api-Secret-Token` header, as Telegram does. An update leaves `pending` only once
 * the webhook answered 2xx; otherwise it is retried with a growing pause, so a bot that answers
 * before the update is safe loses nothing, and one bot's failing webhook never holds up another's.
 */
export class WebhookDelivery {
  private readonly running = new Set<SandboxBot>()
  private stopped = false

  constructor(private readonly retryMs: number) {}

  kick(bot: SandboxBot): void {
    if (this.running.has(bot) || this.stopped) return
    this.running.add(bot)
    void this.loop(bot).finally(() => {
      this.running.delete(bot)
      // an update may have arrived between the loop's last check and now
      if (!this.stopped && bot.webhook && bot.pending.length > 0) this.kick(bot)
    })
  }

  stop(): void {
    this.stopped = true
  }

  private async loop(bot: SandboxBot): Promise<void> {
    let pause = this.retryMs
    while (!this.stopped && bot.webhook && bot.pending.length > 0) {
      const hook = bot.webhook
      const update = bot.pending[0]!
      if (!isAllowed(update, hook.allowedUpdates)) {
        bot.pending.shift()
        continue
      }
      let ok = false
      try {
        const res = await fetch(hook.url, {
          method: "POST",
          headers: { "content-type": "application/json", ...(hook.secretToken ? { "x-telegram-bot-api-secret-token": hook.secretToken } : {}) },
          body: JSON.stringify(update),
          signal: AbortSignal.timeout(60_000)
        })
        await res.arrayBuffer()
        ok = res.status >= 200 && res.status < 300
        bot.lastWebhookError = ok ? null : `Wrong response from the webhook: ${res.status} ${res.statusText}`
      } catch (e) {
        bot.lastWebhookError = `Connection failed: ${(e as Error).message}`
      }
      if (ok) {
        // the webhook may have been changed meanwhile; drop exactly the update just delivered
        if (bot.pending[0] === update) bot.pending.shift()
        pause = this.retryMs
      } else {
        await new Promise((r) => setTimeout(r, pause))
        pause = Math.min(5000, pause * 2)
      }
    }
  }
}
