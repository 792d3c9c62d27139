import { webhookSecretFor } from "../../src/telegram/webhookSecret.js"

/*
 * A steady load of webhook updates as Telegram sends them, for fault drills: each update goes to
 * one bot, in a chat of its own (so its reply can be counted), and is delivered again until the
 * ingress answers 2xx, the way Telegram retries a webhook. Every answer is recorded.
 */

export interface DrillBot {
  readonly botId: string
  readonly username: string
}

export interface Attempt {
  /** HTTP status, or why there was none. */
  readonly status: number | "timeout" | "network"
  readonly ms: number
  /** When it was sent (epoch ms). */
  readonly at: number
}

export interface SentUpdate {
  readonly updateId: number
  readonly bot: DrillBot
  readonly chatId: number
  readonly attempts: Attempt[]
  acked: boolean
}

export interface LoadOptions {
  readonly ingressUrl: string
  readonly secretKey: Uint8Array
  readonly bots: ReadonlyArray<DrillBot>
  /** Updates per second, spread over the bots. */
  readonly rate: number
  /** Chat ids start here (one chat per update); the caller makes them known to the Bot API stand-in. */
  readonly firstChatId: number
  /** Called before an update is first sent, with its chat id. */
  readonly beforeSend?: (bot: DrillBot, chatId: number) => void
  /** One delivery's timeout (default 10 s). */
  readonly timeoutMs?: number
}

const update = (updateId: number, chatId: number) => ({
  update_id: updateId,
  message: {
    message_id: updateId,
    date: Math.floor(Date.now() / 1000),
    chat: { id: chatId, type: "private", first_name: "Drill" },
    from: { id: chatId, is_bot: false, first_name: "Drill" },
    text: `hello ${updateId}`
  }
})

export const startWebhookLoad = (o: LoadOptions) => {
  const sent: SentUpdate[] = []
  const inFlight = new Set<Promise<void>>()
  let stopped = false
  let abandoned = false
  let n = 0
  const timeoutMs = o.timeoutMs ?? 10_000

  const deliver = async (u: SentUpdate) => {
    const body = JSON.stringify(update(u.updateId, u.chatId))
    const headers = { "content-type": "application/json", "x-telegram-bot-api-secret-token": webhookSecretFor(o.secretKey, u.bot.botId) }
    let pause = 250
    // like Telegram: deliver again until acknowledged (bounded, so a drill ends)
    for (let i = 0; i < 60 && !u.acked && !abandoned; i++) {
      const at = Date.now()
      let status: Attempt["status"]
      try {
        const res = await fetch(`${o.ingressUrl}/telegram/${u.bot.botId}`, { method: "POST", headers, body, signal: AbortSignal.timeout(timeoutMs) })
        await res.arrayBuffer()
        status = res.status
      } catch (e) {
        status = (e as Error).name === "TimeoutError" ? "timeout" : "network"
      }
      u.attempts.push({ status, ms: Date.now() - at, at })
      if (typeof status === "number" && status >= 200 && status < 300) u.acked = true
      else {
        await new Promise((r) => setTimeout(r, pause))
        pause = Math.min(2000, pause * 2)
      }
    }
  }

  const started = Date.now()
  const tick = setInterval(() => {
    if (stopped) return
    const due = Math.floor(((Date.now() - started) / 1000) * o.rate)
    while (n < due) {
      const bot = o.bots[n % o.bots.length]!
      const chatId = o.firstChatId + n
      const u: SentUpdate = { updateId: 1_000_000 + chatId, bot, chatId, attempts: [], acked: false }
      n++
      o.beforeSend?.(bot, chatId)
      sent.push(u)
      const p = deliver(u).finally(() => inFlight.delete(p))
      inFlight.add(p)
    }
  }, 20)

  return {
    sent,
    /**
     * Stops sending new updates and waits for the deliveries under way (retries included);
     * `abandon`: no more retries either (the node is gone, the drill has failed).
     */
    stop: async (o: { readonly abandon?: boolean } = {}) => {
      stopped = true
      abandoned = o.abandon === true
      clearInterval(tick)
      while (inFlight.size > 0) await Promise.all([...inFlight])
    }
  }
}

/** Counts of a drill's deliveries: what the report says. */
export const summarize = (sent: ReadonlyArray<SentUpdate>, repliesPerChat: (u: SentUpdate) => number) => {
  const attempts = sent.flatMap((u) => u.attempts)
  const acked = sent.filter((u) => u.acked)
  const statuses: Record<string, number> = {}
  for (const a of attempts) statuses[String(a.status)] = (statuses[String(a.status)] ?? 0) + 1
  return {
    tried: sent.length,
    acknowledged: acked.length,
    deliveries: attempts.length,
    statuses,
    // a reduce, not Math.max(...): a soak makes hundreds of thousands of attempts
    slowestAnswerMs: attempts.reduce((m, a) => Math.max(m, a.ms), 0),
    lost: acked.filter((u) => repliesPerChat(u) === 0).length,
    doubled: sent.filter((u) => repliesPerChat(u) > 1).length
  }
}
