// @ts-expect-error autocannon ships no types; the few fields used are typed below
import autocannon from "autocannon"
import { serveJobs } from "./procs.js"

/*
 * The load generator of `bench e2e`, in a process of its own: autocannon posting Telegram updates
 * to webhook routes, as Telegram would (one JSON update per POST, the secret header). Update i goes
 * to route i mod routes; its chat is either its own (`unique`: chatBase + i, so its reply names
 * it) or one of `chats` shared ones. The send time of every update is recorded (when autocannon
 * builds the request) so the parent can pair it with its reply's arrival at the stand-in API.
 */

export interface LoadJob {
  readonly target: string
  readonly routes: ReadonlyArray<{ readonly path: string; readonly secret: string; readonly botKey: number }>
  readonly amount: number
  readonly connections: number
  /** Updates per second offered (all connections together); none: as fast as answered. */
  readonly rate?: number
  readonly chats: { readonly kind: "unique"; readonly base: number } | { readonly kind: "shared"; readonly count: number }
  readonly updateIdBase: number
  readonly text: string
}

export interface LoadResult {
  readonly ok2xx: number
  readonly non2xx: number
  readonly errors: number
  readonly timeouts: number
  readonly startedAt: number
  readonly endedAt: number
  /** Per update: `[botKey, chatId, sentAt]`. */
  readonly sent: ReadonlyArray<readonly [number, number, number]>
}

interface AutocannonResult {
  readonly "2xx": number
  readonly non2xx: number
  readonly errors: number
  readonly timeouts: number
}

const now = () => performance.timeOrigin + performance.now()

const runJob = (job: LoadJob): Promise<LoadResult> =>
  new Promise((resolve, reject) => {
    const sent: Array<readonly [number, number, number]> = []
    let i = 0
    // autocannon ends its run on a one-second tick: time the run by the last answer instead
    let lastAnswerAt = 0
    const startedAt = now()
    autocannon(
      {
        url: job.target,
        connections: job.connections,
        amount: job.amount,
        ...(job.rate ? { overallRate: job.rate } : {}),
        timeout: 30,
        requests: [
          {
            method: "POST",
            onResponse: () => {
              lastAnswerAt = now()
            },
            setupRequest: (req: Record<string, unknown>) => {
              const n = i++
              const route = job.routes[n % job.routes.length]!
              const chatId = job.chats.kind === "unique" ? job.chats.base + n : 1 + (Math.floor(n / job.routes.length) % job.chats.count)
              const updateId = job.updateIdBase + n
              sent.push([route.botKey, chatId, now()])
              return {
                ...req,
                path: route.path,
                headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": route.secret },
                body: JSON.stringify({
                  update_id: updateId,
                  message: { message_id: updateId, date: Math.floor(Date.now() / 1000), chat: { id: chatId, type: "private", first_name: "Load" }, from: { id: chatId, is_bot: false, first_name: "Load" }, text: job.text, ...(job.text.startsWith("/") ? { entities: [{ type: "bot_command", offset: 0, length: job.text.split(" ")[0]!.length }] } : {}) }
                })
              }
            }
          }
        ]
      },
      (err: unknown, result: AutocannonResult) => {
        if (err) return reject(err instanceof Error ? err : new Error(String(err)))
        resolve({ ok2xx: result["2xx"], non2xx: result.non2xx, errors: result.errors, timeouts: result.timeouts, startedAt, endedAt: lastAnswerAt || now(), sent })
      }
    )
  })

serveJobs(runJob)
