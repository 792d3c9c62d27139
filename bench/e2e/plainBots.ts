import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { Composer, Telegraf } from "telegraf"
import type { KnownUser } from "../../src/actors/decider/state.js"
import type { BotView } from "../../src/actors/decider/updateHandler.js"
import type { Json } from "../../src/actors/decider/mergePatch.js"
import { builtinComposer } from "../../src/telegram/bots/builtin.js"
import type { BotContext } from "../../src/telegram/bots/telegrafHandler.js"

/*
 * The baseline of `bench e2e`, in a process of its own: plain telegraf webhook bots, one node:http
 * server, `webhookCallback` per bot (secret checked by telegraf), the same built-in bot behaviour
 * as botfleet's, state in memory, nothing persisted. What a fleet operator runs without botfleet.
 * Job (IPC): `{ apiRoot, bots: [{ key, token, secret }] }` → `{ url }`; routes are `/tg/<key>`.
 */

interface Job {
  readonly apiRoot: string
  readonly bots: ReadonlyArray<{ readonly key: number; readonly token: string; readonly secret: string }>
}

const start = async (job: Job): Promise<string> => {
  const handlers = new Map<string, ReturnType<Telegraf["webhookCallback"]>>()
  const server = createServer((req, res) => {
    const h = handlers.get(req.url ?? "")
    if (!h) {
      res.statusCode = 404
      return res.end()
    }
    void h(req, res)
  })
  server.keepAliveTimeout = 60_000
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  for (const b of job.bots) {
    const username = `b${b.key}_bot`
    const bot = new Telegraf<BotContext>(b.token, { telegram: { apiRoot: job.apiRoot, webhookReply: false } })
    bot.botInfo = { id: b.key, is_bot: true, first_name: username, username, can_join_groups: true, can_read_all_group_messages: false, supports_inline_queries: false }
    // the same behaviour, state in memory: users and sessions in Maps, nothing persisted
    const users = new Map<number, KnownUser>()
    const sessions = new Map<string, Record<string, unknown>>()
    const memory = new Composer<BotContext>()
    memory.use(async (ctx, next) => {
      const at = new Date().toISOString()
      const state: BotView = { status: "running", ownerId: null, name: username, kind: "builtin", mode: "webhook", config: {}, users, sessions: { get: (k: string) => sessions.get(k) as Json | undefined }, legacy: { get: () => undefined }, entries: { get: () => undefined } }
      // a plain bot has no fleet: no other bot sends it messages, and it sends none (the bench's /start needs neither)
      const fleet = { message: null, send: () => Promise.reject(new Error("no fleet in a plain telegraf bot")), tag: () => undefined, untag: () => undefined }
      Object.assign(ctx, { at, botState: state, fleet })
      const key = `${ctx.from?.id}:${ctx.chat?.id}`
      ctx.session = sessions.get(key)
      await next()
      if (ctx.session) sessions.set(key, ctx.session)
      if (ctx.from) users.set(ctx.from.id, { firstName: ctx.from.first_name, firstSeen: users.get(ctx.from.id)?.firstSeen ?? at, lastSeen: at, blocked: false })
    })
    bot.use(memory, builtinComposer({}))
    const path = `/tg/${b.key}`
    handlers.set(path, bot.webhookCallback(path, { secretToken: b.secret }))
  }
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

process.on("message", (msg: { id: number; job: Job }) => {
  start(msg.job).then(
    (url) => process.send!({ id: msg.id, url }),
    (e: unknown) => process.send!({ id: msg.id, error: String(e) })
  )
})
process.on("disconnect", () => process.exit(0))
process.send!({ op: "listening" })
