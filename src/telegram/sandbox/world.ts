import { createHash, randomBytes } from "node:crypto"
import { EventEmitter } from "node:events"
import { TokenBuckets, bucketsFor, defaultSendLimits, isSendingMethod } from "../limits.pure.js"
import type { SendLimits } from "../limits.pure.js"

/**
 * The state of the Bot API sandbox: bots, their pending updates, the chats users opened with
 * them and every message a bot sent. Only the sandbox server touches it; tests and people reach it
 * over HTTP, or in-process through the same methods.
 */

/** A Bot API error exactly as Telegram returns it. */
export class ApiError extends Error {
  constructor(
    readonly errorCode: number,
    readonly description: string,
    readonly retryAfter?: number
  ) {
    super(description)
  }
  toJSON() {
    return {
      ok: false,
      error_code: this.errorCode,
      description: this.description,
      ...(this.retryAfter !== undefined ? { parameters: { retry_after: this.retryAfter } } : {})
    }
  }
}

export interface SandboxUser {
  readonly id: number
  readonly is_bot: false
  readonly first_name: string
  readonly last_name?: string
  readonly username?: string
  readonly language_code?: string
}

export interface SandboxChat {
  readonly id: number
  readonly type: "private" | "group" | "supergroup"
  readonly title?: string
  readonly first_name?: string
}

export interface SandboxMessage {
  readonly message_id: number
  readonly date: number
  readonly chat: SandboxChat
  readonly from?: SandboxUser | { id: number; is_bot: true; first_name: string; username: string }
  text?: string
  caption?: string
  photo?: ReadonlyArray<{ readonly file_id: string; readonly file_unique_id: string; readonly width: number; readonly height: number; readonly file_size: number }>
  document?: { readonly file_id: string; readonly file_unique_id: string; readonly file_name?: string; readonly file_size: number }
  edit_date?: number
  readonly reply_to_message_id?: number
  reply_markup?: unknown
}

export type Update = { readonly update_id: number } & Record<string, unknown>

export interface Webhook {
  readonly url: string
  readonly secretToken?: string
  readonly allowedUpdates?: ReadonlyArray<string>
}

/** A scripted failure: the next matching call answers this instead of doing its work. */
export interface Fault {
  readonly method?: string
  readonly errorCode: number
  readonly description?: string
  readonly retryAfter?: number
}

export interface SandboxBot {
  readonly id: number
  readonly username: string
  readonly firstName: string
  /** The fleet's id for this bot (e.g. `demo-sunny`), when the fleet registered it: a second name for it here. */
  readonly fleetId: string | null
  /** Current token; /revoke (rotateToken) replaces it. */
  token: string
  webhook: Webhook | null
  /** Updates not yet confirmed (getUpdates offset) or not yet delivered (webhook). */
  pending: Update[]
  nextUpdateId: number
  readonly sent: SandboxMessage[]
  /** Messages users wrote to the bot, for the chat page's transcript. */
  readonly heard: SandboxMessage[]
  readonly chats: Map<number, SandboxChat>
  readonly blockedBy: Set<number>
  readonly faults: Fault[]
  /** The getUpdates call currently holding the long poll, ended when another one arrives. */
  poller: { readonly end: (e: ApiError | null) => void } | null
  lastWebhookError: string | null
  /** Calls answered per method, for tests that check nothing was sent. */
  readonly calls: Map<string, number>
  /** The bot's answers to button presses (answerCallbackQuery) by query id, newest last; the chat page shows them. */
  readonly callbackAnswers: Map<string, { readonly text: string; readonly showAlert: boolean }>
}

export interface SandboxOptions {
  /** Telegram's sending limits, answered with 429s; `false` turns them off (benchmarks). */
  readonly limits?: SendLimits | false
  /** Clock in ms, replaceable in tests. */
  readonly now?: () => number
}

/** Emitted as `"message"` whenever a bot sends or edits a message. */
export interface MessageEvent {
  readonly bot: string
  readonly message: SandboxMessage
  readonly edited: boolean
}

/** A file a bot uploaded (or named by URL), as the sandbox keeps it: served to the chat page, reusable by file_id. */
export interface SandboxFile {
  readonly fileId: string
  readonly uniqueId: string
  readonly bytes: Uint8Array | null
  readonly sha256: string | null
  readonly name: string
  readonly url: string | null
}

export class SandboxWorld extends EventEmitter {
  /** Files bots sent, by file_id (shared by all bots, as ids are opaque strings here). */
  readonly files = new Map<string, SandboxFile>()
  private readonly byToken = new Map<string, SandboxBot>()
  private readonly byUsername = new Map<string, SandboxBot>()
  private readonly byFleetId = new Map<string, SandboxBot>()
  private readonly buckets = new TokenBuckets()
  private nextBotId = 7_000_000_000
  private nextMessageId = 1
  readonly now: () => number
  limits: SendLimits | false

  constructor(options: SandboxOptions = {}) {
    super()
    this.setMaxListeners(0)
    this.now = options.now ?? Date.now
    this.limits = options.limits === undefined ? defaultSendLimits : options.limits
  }

  /**
   * Creates a bot and its token, as @BotFather would. `fleetId` is the fleet's id for it: every
   * `/sandbox/<bot>/...` route then takes that id as well as the username.
   */
  createBot(args: { username: string; firstName?: string; token?: string; fleetId?: string }): SandboxBot {
    const username = args.username.replace(/^@/, "")
    if (this.byUsername.has(username.toLowerCase())) throw new ApiError(400, `Bad Request: bot @${username} already exists`)
    const fleetId = args.fleetId ?? null
    // as on Telegram, a token starts with its bot's id: a given token (a bot the fleet already
    // knows, learned again after a restart) keeps the id it names
    const named = args.token !== undefined ? Number(args.token.split(":")[0]) : NaN
    const id = Number.isSafeInteger(named) && named > 0 ? named : this.nextBotId++
    const token = args.token ?? `${id}:${randomBytes(26).toString("base64url")}`
    const bot: SandboxBot = {
      id,
      username,
      firstName: args.firstName ?? username,
      fleetId,
      token,
      webhook: null,
      pending: [],
      nextUpdateId: 100_000 + Math.floor(Math.random() * 1_000_000),
      sent: [],
      heard: [],
      chats: new Map(),
      blockedBy: new Set(),
      faults: [],
      poller: null,
      lastWebhookError: null,
      calls: new Map(),
      callbackAnswers: new Map()
    }
    this.byToken.set(token, bot)
    this.byUsername.set(username.toLowerCase(), bot)
    // a username always wins over a fleet id that spells the same (bot() looks usernames up first)
    if (fleetId !== null && !this.byFleetId.has(fleetId.toLowerCase())) this.byFleetId.set(fleetId.toLowerCase(), bot)
    return bot
  }

  /** Revokes a token: later calls with it answer 401, as after /revoke in @BotFather. */
  revoke(username: string): void {
    const bot = this.bot(username)
    this.byToken.delete(bot.token)
  }

  /** Revokes the bot's token and issues a new one for the same bot, as /revoke in @BotFather does. */
  rotateToken(username: string): string {
    const bot = this.bot(username)
    this.byToken.delete(bot.token)
    bot.token = `${bot.id}:${randomBytes(26).toString("base64url")}`
    this.byToken.set(bot.token, bot)
    return bot.token
  }

  botByToken(token: string): SandboxBot {
    const bot = this.byToken.get(token)
    if (!bot) throw new ApiError(401, "Unauthorized")
    return bot
  }

  /** A bot by its username (`@` optional) or by its fleet id; 404 otherwise. */
  bot(name: string): SandboxBot {
    const key = name.replace(/^@/, "").toLowerCase()
    const bot = this.byUsername.get(key) ?? (name.startsWith("@") ? undefined : this.byFleetId.get(key))
    if (!bot) throw new ApiError(404, `Not Found: no bot ${name.startsWith("@") ? name : `@${name} or ${name}`} in the sandbox`)
    return bot
  }

  bots(): ReadonlyArray<SandboxBot> {
    return [...this.byUsername.values()]
  }

  /** Appends an update for the bot; the server delivers it (webhook) or hands it out (getUpdates). */
  pushUpdate(bot: SandboxBot, body: Record<string, unknown>): Update {
    const update = { update_id: bot.nextUpdateId++, ...body } as Update
    bot.pending.push(update)
    this.emit("update", bot)
    return update
  }

  /** A user writes `text` in a chat with the bot. The chat becomes known to the bot. */
  say(
    username: string,
    args: { chatId?: number; userId: number; text: string; firstName?: string; languageCode?: string; chatType?: SandboxChat["type"] }
  ): { update: Update; message: SandboxMessage } {
    const bot = this.bot(username)
    const chatId = args.chatId ?? args.userId
    const type = args.chatType ?? (chatId < 0 ? "supergroup" : "private")
    const from: SandboxUser = {
      id: args.userId,
      is_bot: false,
      first_name: args.firstName ?? `User ${args.userId}`,
      ...(args.languageCode ? { language_code: args.languageCode } : {})
    }
    const chat: SandboxChat = type === "private" ? { id: chatId, type, first_name: from.first_name } : { id: chatId, type, title: `Group ${chatId}` }
    bot.chats.set(chatId, chat)
    const message: SandboxMessage = { message_id: this.nextMessageId++, date: Math.floor(this.now() / 1000), chat, from, text: args.text }
    if (args.text.startsWith("/")) {
      const len = args.text.split(/\s/)[0]!.length
      ;(message as unknown as Record<string, unknown>)["entities"] = [{ type: "bot_command", offset: 0, length: len }]
    }
    bot.heard.push(message)
    return { update: this.pushUpdate(bot, { message }), message }
  }

  /** The user presses an inline button of one of the bot's messages. */
  click(username: string, args: { userId: number; chatId?: number; messageId: number; data: string }): Update {
    const bot = this.bot(username)
    const message = bot.sent.find((m) => m.message_id === args.messageId)
    if (!message) throw new ApiError(400, "Bad Request: message not found")
    // the user's name as they last wrote in that chat (a private chat carries it)
    const named = message.chat.type === "private" && message.chat.id === args.userId ? message.chat.first_name : undefined
    const from: SandboxUser = { id: args.userId, is_bot: false, first_name: named ?? `User ${args.userId}` }
    const buttons = ((message.reply_markup as { inline_keyboard?: Array<Array<{ callback_data?: unknown }>> } | undefined)?.inline_keyboard ?? []).flat()
    if (!buttons.some((b) => b.callback_data === args.data)) throw new ApiError(400, "Bad Request: the message has no button with this callback data")
    return this.pushUpdate(bot, {
      callback_query: { id: `cq${randomBytes(8).toString("hex")}`, from, message, chat_instance: String(message.chat.id), data: args.data }
    })
  }

  block(username: string, userId: number, blocked = true): void {
    const bot = this.bot(username)
    if (blocked) bot.blockedBy.add(userId)
    else bot.blockedBy.delete(userId)
  }

  /** Messages the bot sent (with edits applied), oldest first; only one chat's when `chatId` is given. */
  messages(username: string, chatId?: number): ReadonlyArray<SandboxMessage> {
    const sent = this.bot(username).sent
    return chatId === undefined ? sent : sent.filter((m) => m.chat.id === chatId)
  }

  /** Both sides of one chat, oldest first: what the web chat page shows. */
  conversation(username: string, chatId: number): ReadonlyArray<SandboxMessage> {
    const bot = this.bot(username)
    return [...bot.heard, ...bot.sent].filter((m) => m.chat.id === chatId).sort((a, b) => a.message_id - b.message_id)
  }

  /** Scripts failures for the bot's next calls (all methods, or the one named). */
  injectFaults(username: string, faults: ReadonlyArray<Fault>): void {
    this.bot(username).faults.push(...faults)
  }

  /** Checks the scripted faults and the limits before a method runs; throws the error Telegram would answer. */
  gate(bot: SandboxBot, method: string, chatId: unknown): void {
    const i = bot.faults.findIndex((f) => f.method === undefined || f.method === method)
    if (i >= 0) {
      const [f] = bot.faults.splice(i, 1)
      throw new ApiError(f!.errorCode, f!.description ?? defaultDescription(f!.errorCode, f!.retryAfter), f!.retryAfter)
    }
    if (this.limits && isSendingMethod(method) && (typeof chatId === "number" || typeof chatId === "string")) {
      const wait = this.buckets.take(bucketsFor(this.limits, bot.username, chatId), this.now())
      if (wait > 0) {
        const retryAfter = Math.max(1, Math.ceil(wait / 1000))
        throw new ApiError(429, `Too Many Requests: retry after ${retryAfter}`, retryAfter)
      }
    }
  }

  /** Records a message the bot sent, after checking the chat exists and the user has not blocked the bot. */
  botSends(bot: SandboxBot, chatId: number, text: string, extra: { replyTo?: number; replyMarkup?: unknown }): SandboxMessage {
    const chat = this.chatOf(bot, chatId)
    const message: SandboxMessage = {
      message_id: this.nextMessageId++,
      date: Math.floor(this.now() / 1000),
      chat,
      from: { id: bot.id, is_bot: true, first_name: bot.firstName, username: bot.username },
      text,
      ...(extra.replyTo !== undefined ? { reply_to_message_id: extra.replyTo } : {}),
      ...(extra.replyMarkup !== undefined ? { reply_markup: extra.replyMarkup } : {})
    }
    bot.sent.push(message)
    this.emit("message", { bot: bot.username, message, edited: false } satisfies MessageEvent)
    return message
  }

  /** Keeps an uploaded file (or a URL Telegram would download) and returns it with its new file_id. */
  storeFile(args: { readonly bytes: Uint8Array | null; readonly name: string; readonly url?: string }): SandboxFile {
    const sha256 = args.bytes ? createHash("sha256").update(args.bytes).digest("hex") : null
    const file: SandboxFile = { fileId: `F${randomBytes(12).toString("base64url")}`, uniqueId: (sha256 ?? createHash("sha256").update(args.url ?? "").digest("hex")).slice(0, 16), bytes: args.bytes, sha256, name: args.name, url: args.url ?? null }
    this.files.set(file.fileId, file)
    return file
  }

  /** A bot sends a photo or a document (a stored file), with an optional caption. */
  botSendsFile(bot: SandboxBot, chatId: number, kind: "photo" | "document", file: SandboxFile, extra: { caption?: string; replyMarkup?: unknown }): SandboxMessage {
    const chat = this.chatOf(bot, chatId)
    const size = file.bytes?.byteLength ?? 0
    const message: SandboxMessage = {
      message_id: this.nextMessageId++,
      date: Math.floor(this.now() / 1000),
      chat,
      from: { id: bot.id, is_bot: true, first_name: bot.firstName, username: bot.username },
      ...(kind === "photo"
        ? { photo: [{ file_id: file.fileId, file_unique_id: file.uniqueId, width: 0, height: 0, file_size: size }] }
        : { document: { file_id: file.fileId, file_unique_id: file.uniqueId, file_name: file.name, file_size: size } }),
      ...(extra.caption !== undefined ? { caption: extra.caption } : {}),
      ...(extra.replyMarkup !== undefined ? { reply_markup: extra.replyMarkup } : {})
    }
    bot.sent.push(message)
    this.emit("message", { bot: bot.username, message, edited: false } satisfies MessageEvent)
    return message
  }

  botEdits(bot: SandboxBot, chatId: number, messageId: number, text: string, replyMarkup?: unknown): SandboxMessage {
    this.chatOf(bot, chatId)
    const message = bot.sent.find((m) => m.chat.id === chatId && m.message_id === messageId)
    if (!message) throw new ApiError(400, "Bad Request: message to edit not found")
    // as on Telegram, an edit without reply_markup removes the keyboard
    if (message.text === text && JSON.stringify(message.reply_markup) === JSON.stringify(replyMarkup)) {
      throw new ApiError(400, "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message")
    }
    message.text = text
    if (replyMarkup === undefined) delete message.reply_markup
    else message.reply_markup = replyMarkup
    message.edit_date = Math.floor(this.now() / 1000)
    this.emit("message", { bot: bot.username, message, edited: true } satisfies MessageEvent)
    return message
  }

  chatOf(bot: SandboxBot, chatId: number): SandboxChat {
    const chat = bot.chats.get(chatId)
    if (!chat) throw new ApiError(400, "Bad Request: chat not found")
    if (chat.type === "private" && bot.blockedBy.has(chatId)) throw new ApiError(403, "Forbidden: bot was blocked by the user")
    return chat
  }

  count(bot: SandboxBot, method: string): void {
    bot.calls.set(method, (bot.calls.get(method) ?? 0) + 1)
  }
}

const defaultDescription = (code: number, retryAfter?: number): string =>
  code === 429
    ? `Too Many Requests: retry after ${retryAfter ?? 1}`
    : code === 403
      ? "Forbidden: bot was blocked by the user"
      : code === 401
        ? "Unauthorized"
        : code >= 500
          ? "Internal Server Error"
          : "Bad Request"
