import { ApiError } from "./world.js"
import type { SandboxBot, SandboxWorld, Update } from "./world.js"
import { isAllowed } from "./webhookDelivery.js"
import type { WebhookDelivery } from "./webhookDelivery.js"

/** What a Bot API method implementation gets: the world, the calling bot, its decoded parameters. */
export interface MethodCall {
  readonly world: SandboxWorld
  readonly bot: SandboxBot
  readonly params: Record<string, unknown>
  readonly delivery: WebhookDelivery
  /** Resolves when the caller hung up (ends a long poll early). */
  readonly closed: Promise<void>
}

export type Method = (call: MethodCall) => Promise<{ result: unknown; description?: string }>

const int = (params: Record<string, unknown>, name: string): number | undefined => {
  const v = params[name]
  if (v === undefined || v === null || v === "") return undefined
  const n = typeof v === "number" ? v : Number(v)
  if (!Number.isSafeInteger(n)) throw new ApiError(400, `Bad Request: field "${name}" must be an Integer`)
  return n
}

const chatIdOf = (params: Record<string, unknown>): number => {
  const id = int(params, "chat_id")
  if (id === undefined) throw new ApiError(400, "Bad Request: chat_id is empty")
  return id
}

const textOf = (params: Record<string, unknown>): string => {
  const text = params["text"]
  if (typeof text !== "string" || text.trim().length === 0) throw new ApiError(400, "Bad Request: message text is empty")
  if (text.length > 4096) throw new ApiError(400, "Bad Request: message is too long")
  return text
}

const allowedOf = (v: unknown): ReadonlyArray<string> | undefined =>
  Array.isArray(v) ? v.map(String) : typeof v === "string" && v.length > 0 ? (JSON.parse(v) as string[]) : undefined

const ok = (result: unknown, description?: string) => Promise.resolve(description ? { result, description } : { result })

const confirmUpTo = (bot: SandboxBot, offset: number | undefined) => {
  if (offset === undefined) return
  if (offset < 0) bot.pending = bot.pending.slice(offset)
  else bot.pending = bot.pending.filter((u) => u.update_id >= offset)
}

const getUpdates: Method = async ({ world, bot, params, closed }) => {
  if (bot.webhook) {
    throw new ApiError(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first")
  }
  confirmUpTo(bot, int(params, "offset"))
  const limit = Math.min(100, Math.max(1, int(params, "limit") ?? 100))
  const timeoutS = Math.min(50, Math.max(0, int(params, "timeout") ?? 0))
  const allowed = allowedOf(params["allowed_updates"])
  const take = (): Update[] => bot.pending.filter((u) => isAllowed(u, allowed)).slice(0, limit)
  // a second poller ends the first, as Telegram does (the first gets a 409)
  bot.poller?.end(new ApiError(409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"))
  bot.poller = null
  const now = take()
  if (now.length > 0 || timeoutS === 0) return { result: now }
  return new Promise((resolve, reject) => {
    const finish = (e: ApiError | null) => {
      clearTimeout(timer)
      world.off("update", onUpdate)
      if (bot.poller === poller) bot.poller = null
      if (e) reject(e)
      else resolve({ result: bot.webhook ? [] : take() })
    }
    const poller = { end: finish }
    bot.poller = poller
    const onUpdate = (b: SandboxBot) => {
      if (b === bot && take().length > 0) finish(null)
    }
    const timer = setTimeout(() => finish(null), timeoutS * 1000)
    world.on("update", onUpdate)
    void closed.then(() => finish(null))
  })
}

const setWebhook: Method = async ({ bot, params, delivery }) => {
  const url = typeof params["url"] === "string" ? params["url"] : ""
  if (url === "") {
    bot.webhook = null
    return { result: true, description: "Webhook was deleted" }
  }
  try {
    new URL(url)
  } catch {
    throw new ApiError(400, "Bad Request: bad webhook: Failed to resolve host: Name or service not known")
  }
  const secret = params["secret_token"]
  if (secret !== undefined && (typeof secret !== "string" || !/^[A-Za-z0-9_-]{1,256}$/.test(secret))) {
    throw new ApiError(400, "Bad Request: secret token contains unallowed characters")
  }
  if (params["drop_pending_updates"] === true) bot.pending = []
  const allowed = allowedOf(params["allowed_updates"])
  bot.webhook = { url, ...(typeof secret === "string" ? { secretToken: secret } : {}), ...(allowed ? { allowedUpdates: allowed } : {}) }
  bot.poller?.end(null)
  delivery.kick(bot)
  return { result: true, description: "Webhook was set" }
}

const deleteWebhook: Method = async ({ bot, params }) => {
  const had = bot.webhook !== null
  bot.webhook = null
  if (params["drop_pending_updates"] === true) bot.pending = []
  return { result: true, description: had ? "Webhook was deleted" : "Webhook is already deleted" }
}

/** Parts of a multipart call that were files (the server's multipart parser puts them here). */
export interface UploadedPart {
  readonly bytes: Uint8Array
  readonly name: string
}

const isUploaded = (v: unknown): v is UploadedPart => typeof v === "object" && v !== null && (v as { bytes?: unknown }).bytes instanceof Uint8Array

/** The file a sendPhoto/sendDocument names: an upload (multipart), a file_id the sandbox knows, or an http(s) URL. */
const fileOf = (world: SandboxWorld, params: Record<string, unknown>, field: "photo" | "document") => {
  const v = params[field]
  if (isUploaded(v)) {
    if (v.bytes.byteLength === 0) throw new ApiError(400, "Bad Request: file must be non-empty")
    if (v.bytes.byteLength > 50 * 1024 * 1024) throw new ApiError(413, "Request Entity Too Large")
    return world.storeFile({ bytes: v.bytes, name: v.name })
  }
  if (typeof v === "string" && /^https?:\/\//.test(v)) return world.storeFile({ bytes: null, name: v.split("/").pop() || field, url: v })
  if (typeof v === "string" && world.files.has(v)) return world.files.get(v)!
  if (typeof v === "string" && v.length > 0) throw new ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
  throw new ApiError(400, `Bad Request: there is no ${field} in the request`)
}

const sendFile = (field: "photo" | "document"): Method => ({ world, bot, params }) => {
  const chatId = chatIdOf(params)
  const caption = params["caption"]
  if (caption !== undefined && (typeof caption !== "string" || caption.length > 1024)) throw new ApiError(400, "Bad Request: message caption is too long")
  const file = fileOf(world, params, field)
  return ok(world.botSendsFile(bot, chatId, field, file, { ...(typeof caption === "string" ? { caption } : {}), ...(params["reply_markup"] !== undefined ? { replyMarkup: params["reply_markup"] } : {}) }))
}

/** The Bot API methods the sandbox speaks. Any other method answers 404 Not Found, as Telegram does. */
export const methods: Readonly<Record<string, Method>> = {
  getMe: ({ bot }) =>
    ok({ id: bot.id, is_bot: true, first_name: bot.firstName, username: bot.username, can_join_groups: true, can_read_all_group_messages: false, supports_inline_queries: false }),
  logOut: () => ok(true),
  close: () => ok(true),
  getUpdates,
  setWebhook,
  deleteWebhook,
  getWebhookInfo: ({ bot }) =>
    ok({
      url: bot.webhook?.url ?? "",
      has_custom_certificate: false,
      pending_update_count: bot.pending.length,
      ...(bot.lastWebhookError ? { last_error_message: bot.lastWebhookError } : {}),
      ...(bot.webhook?.allowedUpdates ? { allowed_updates: bot.webhook.allowedUpdates } : {})
    }),
  sendMessage: ({ world, bot, params }) => {
    const chatId = chatIdOf(params)
    const text = textOf(params)
    const replyParams = params["reply_parameters"] as { message_id?: number } | undefined
    const replyTo = int(params, "reply_to_message_id") ?? replyParams?.message_id
    return ok(world.botSends(bot, chatId, text, { ...(replyTo !== undefined ? { replyTo } : {}), ...(params["reply_markup"] !== undefined ? { replyMarkup: params["reply_markup"] } : {}) }))
  },
  editMessageText: ({ world, bot, params }) => {
    if (params["inline_message_id"] !== undefined) throw new ApiError(400, "Bad Request: inline messages are not in the sandbox")
    const messageId = int(params, "message_id")
    if (messageId === undefined) throw new ApiError(400, "Bad Request: message identifier is not specified")
    return ok(world.botEdits(bot, chatIdOf(params), messageId, textOf(params), params["reply_markup"]))
  },
  sendChatAction: ({ world, bot, params }) => {
    world.chatOf(bot, chatIdOf(params))
    if (typeof params["action"] !== "string") throw new ApiError(400, "Bad Request: wrong parameter action in request")
    return ok(true)
  },
  answerCallbackQuery: ({ bot, params }) => {
    const id = params["callback_query_id"]
    // Telegram's ids are numeric strings: one sent as a form field may arrive decoded as a number
    const key = typeof id === "number" ? String(id) : id
    if (typeof key !== "string" || bot.callbackAnswers.has(key)) {
      throw new ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
    }
    const text = typeof params["text"] === "string" ? params["text"] : ""
    if (text.length > 200) throw new ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
    bot.callbackAnswers.set(key, { text, showAlert: params["show_alert"] === true })
    return ok(true)
  },
  setMyCommands: () => ok(true),
  sendPhoto: sendFile("photo"),
  sendDocument: sendFile("document"),
  deleteMessage: ({ bot, params }) => {
    const chatId = chatIdOf(params)
    const messageId = int(params, "message_id")
    const i = bot.sent.findIndex((m) => m.chat.id === chatId && m.message_id === messageId)
    if (i < 0) throw new ApiError(400, "Bad Request: message to delete not found")
    bot.sent.splice(i, 1)
    return ok(true)
  }
}
