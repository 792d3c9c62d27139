import { readFile } from "node:fs/promises"
import Fastify from "fastify"
import type { FastifyInstance, FastifyReply } from "fastify"
import { ApiError, SandboxWorld } from "./world.js"
import type { SandboxBot, SandboxOptions, Update } from "./world.js"
import { methods } from "./methods.js"
import { WebhookDelivery } from "./webhookDelivery.js"

/**
 * The Bot API sandbox: a local HTTP server speaking the Bot API at `/bot<token>/<method>` with
 * Telegram's response and error format, plus `/sandbox/...` routes to speak as a user, read what
 * bots sent, block a bot, script faults, and a web chat page at `/sandbox`. Nothing in botfleet's
 * tests calls Telegram: they call this.
 */
export interface Sandbox {
  /** The Bot API root to configure clients with (`TELEGRAM_API_ROOT`), e.g. `http://127.0.0.1:8081`. */
  readonly apiRoot: string
  readonly world: SandboxWorld
  readonly close: () => Promise<void>
}

export interface StartSandboxOptions extends SandboxOptions {
  readonly port?: number
  readonly host?: string
  /** First pause after a failed webhook delivery; doubles up to 5 s. */
  readonly webhookRetryMs?: number
}

const TOKEN_ROUTE = "/bot:token/:method"

const parseParams = (query: unknown, body: unknown): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const source of [query, body]) {
    if (source && typeof source === "object" && !Array.isArray(source)) Object.assign(out, source)
  }
  // form and query values arrive as strings: decode numbers and JSON the way Telegram does
  for (const [k, v] of Object.entries(out)) {
    if (typeof v !== "string") continue
    if (/^-?\d+$/.test(v) && k !== "text" && k !== "secret_token") out[k] = Number(v)
    else if ((v.startsWith("{") || v.startsWith("[")) && k !== "text") {
      try {
        out[k] = JSON.parse(v)
      } catch {
        // not JSON: keep the string
      }
    } else if (v === "true" || v === "false") out[k] = v === "true"
  }
  return out
}

const sendError = (reply: FastifyReply, e: unknown) => {
  const err = e instanceof ApiError ? e : new ApiError(500, `Internal Server Error: ${(e as Error)?.message ?? String(e)}`)
  return reply.code(err.errorCode).send(err.toJSON())
}

export const startSandbox = async (options: StartSandboxOptions = {}): Promise<Sandbox> => {
  const world = new SandboxWorld(options)
  const app: FastifyInstance = Fastify({ logger: false, bodyLimit: 1024 * 1024, forceCloseConnections: true })
  const delivery = new WebhookDelivery(options.webhookRetryMs ?? 200)
  world.on("update", (bot: SandboxBot) => {
    if (bot.webhook) delivery.kick(bot)
  })

  // uploads (sendPhoto, sendDocument): fields as strings (decoded like form fields below), files as their bytes and name
  app.addContentTypeParser("multipart/form-data", { parseAs: "buffer", bodyLimit: 51 * 1024 * 1024 }, (req, body, done) => {
    new Response(body as Buffer, { headers: { "content-type": String(req.headers["content-type"]) } })
      .formData()
      .then(async (form) => {
        const out: Record<string, unknown> = {}
        for (const [k, v] of form.entries()) out[k] = typeof v === "string" ? v : { bytes: new Uint8Array(await v.arrayBuffer()), name: v.name }
        done(null, out)
      })
      .catch((e: unknown) => done(e as Error))
  })
  app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string" }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)))
  })
  app.setErrorHandler((error: { statusCode?: number; message: string }, _req, reply) => {
    const code = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? 400 : 500
    return reply.code(code).send(new ApiError(code, `Bad Request: ${error.message}`).toJSON())
  })

  app.route({
    method: ["GET", "POST"],
    url: TOKEN_ROUTE,
    handler: async (req, reply) => {
      const { token, method } = req.params as { token: string; method: string }
      try {
        const bot = world.botByToken(token)
        const impl = Object.prototype.hasOwnProperty.call(methods, method) ? methods[method] : undefined
        if (!impl) throw new ApiError(404, "Not Found")
        const params = parseParams(req.query, req.body)
        world.count(bot, method)
        world.gate(bot, method, params["chat_id"])
        const result = await impl({ world, bot, params, delivery, closed: closedPromise(reply) })
        return reply.send({ ok: true, result: result.result, ...(result.description ? { description: result.description } : {}) })
      } catch (e) {
        return sendError(reply, e)
      }
    }
  })

  app.get("/sandbox", async (_req, reply) => {
    const html = await readFile(new URL("./chatPage.html", import.meta.url), "utf8")
    return reply.type("text/html; charset=utf-8").send(html)
  })
  // a file a bot sent, for the chat page (uploads are served back; a URL file redirects)
  app.get("/sandbox/file/:fileId", async (req, reply) => {
    const file = world.files.get((req.params as { fileId: string }).fileId)
    if (!file) return sendError(reply, new ApiError(404, "Not Found: no such file"))
    if (file.bytes === null) return reply.redirect(file.url!)
    return reply.header("content-disposition", `inline; filename="${file.name.replace(/[^\w.-]/g, "_")}"`).type("application/octet-stream").send(Buffer.from(file.bytes))
  })
  app.get("/sandbox/bots", async () => ({
    bots: world.bots().map((b) => ({ id: b.id, username: b.username, firstName: b.firstName, botId: b.fleetId, mode: b.webhook ? "webhook" : "polling" }))
  }))
  app.post("/sandbox/bots", async (req, reply) => {
    const body = (req.body ?? {}) as { username?: unknown; firstName?: unknown }
    if (typeof body.username !== "string" || !/^@?[A-Za-z][A-Za-z0-9_]{2,31}$/.test(body.username)) {
      return sendError(reply, new ApiError(400, "Bad Request: username must be 3-32 letters, digits or _"))
    }
    try {
      const bot = world.createBot({ username: body.username, ...(typeof body.firstName === "string" ? { firstName: body.firstName } : {}) })
      return { id: bot.id, username: bot.username, token: bot.token }
    } catch (e) {
      return sendError(reply, e)
    }
  })
  app.post("/sandbox/:bot/say", async (req, reply) => {
    const { bot } = req.params as { bot: string }
    const b = (req.body ?? {}) as Record<string, unknown>
    if (typeof b["text"] !== "string" || typeof b["userId"] !== "number") {
      return sendError(reply, new ApiError(400, "Bad Request: say needs {userId: number, text: string, chatId?: number}"))
    }
    try {
      const { update, message } = world.say(bot, {
        userId: b["userId"],
        text: b["text"],
        ...(typeof b["chatId"] === "number" ? { chatId: b["chatId"] } : {}),
        ...(typeof b["firstName"] === "string" ? { firstName: b["firstName"] } : {}),
        ...(typeof b["languageCode"] === "string" ? { languageCode: b["languageCode"] } : {})
      })
      return { update_id: update.update_id, message_id: message.message_id }
    } catch (e) {
      return sendError(reply, e)
    }
  })
  app.post("/sandbox/:bot/click", async (req, reply) => {
    const { bot } = req.params as { bot: string }
    const b = (req.body ?? {}) as { userId?: number; messageId?: number; data?: string }
    try {
      const update: Update = world.click(bot, { userId: Number(b.userId), messageId: Number(b.messageId), data: String(b.data ?? "") })
      return { update_id: update.update_id, callback_query_id: (update["callback_query"] as { id: string }).id }
    } catch (e) {
      return sendError(reply, e)
    }
  })
  // the bot's answer to a button press (null until it answered): the chat page shows it as a notice
  app.get("/sandbox/:bot/callbackAnswer", async (req, reply) => {
    const { bot } = req.params as { bot: string }
    const q = req.query as { id?: string }
    try {
      return { answer: world.bot(bot).callbackAnswers.get(String(q.id)) ?? null }
    } catch (e) {
      return sendError(reply, e)
    }
  })
  app.post("/sandbox/:bot/block", async (req, reply) => {
    const { bot } = req.params as { bot: string }
    const b = (req.body ?? {}) as { userId?: number; blocked?: boolean }
    try {
      world.block(bot, Number(b.userId), b.blocked !== false)
      return { ok: true }
    } catch (e) {
      return sendError(reply, e)
    }
  })
  app.post("/sandbox/:bot/faults", async (req, reply) => {
    const { bot } = req.params as { bot: string }
    try {
      world.injectFaults(bot, Array.isArray(req.body) ? req.body : [])
      return { ok: true }
    } catch (e) {
      return sendError(reply, e)
    }
  })
  app.get("/sandbox/:bot/messages", async (req, reply) => {
    const { bot } = req.params as { bot: string }
    const q = req.query as { chatId?: string }
    try {
      return { messages: world.messages(bot, q.chatId !== undefined ? Number(q.chatId) : undefined) }
    } catch (e) {
      return sendError(reply, e)
    }
  })
  app.get("/sandbox/:bot/conversation", async (req, reply) => {
    const { bot } = req.params as { bot: string }
    const q = req.query as { chatId?: string }
    try {
      return { messages: world.conversation(bot, Number(q.chatId)) }
    } catch (e) {
      return sendError(reply, e)
    }
  })

  const address = await app.listen({ port: options.port ?? 0, host: options.host ?? "127.0.0.1" })
  return {
    apiRoot: address,
    world,
    close: async () => {
      delivery.stop()
      for (const bot of world.bots()) bot.poller?.end(null)
      await app.close()
    }
  }
}

/** Resolves when the client hangs up before the answer, so a long poll stops waiting for nobody. */
const closedPromise = (reply: FastifyReply): Promise<void> =>
  new Promise((resolve) => {
    reply.raw.once("close", () => resolve())
  })
