import { Context, Telegram, TelegramError } from "telegraf"
import type { Composer } from "telegraf"
import type { Update, UserFromGetMe } from "telegraf/types"
import { RecordedCallFailed, chatIdOf } from "../../actors/decider/updateHandler.js"
import type { BotView, UpdateContext, UpdateHandler } from "../../actors/decider/updateHandler.js"
import type { Json } from "../../actors/decider/mergePatch.js"
import type { DomainEvent } from "../../events/schema/catalogue.js"
import { diffMergePatch, jsonClone } from "./sessionPatch.pure.js"
import { recordableParams } from "../uploads.js"
import { fleetOf } from "./fleetContext.js"
import type { Fleet } from "./fleetContext.js"

/**
 * Runs telegraf `Composer` middleware as a bot's decide step for one update.
 *
 * - `ctx.telegram` goes through the actor's recorded calls (`UpdateContext.call`): each call's
 *   intent is recorded (call id `<update_id>:<n>`, deterministic) before the actor sends it, and
 *   its outcome after; the handler awaits Telegram's real result (a sent message with its real
 *   `message_id`). A refusal reaches it as telegraf's `TelegramError` (code, description,
 *   retry_after); a call whose outcome a crash left unknown as `RecordedCallUnknown`.
 * - Chats whose user blocked the bot get a telegraf `TelegramError` 403 without any call (the
 *   decider refuses it): a blocked user is never messaged again. Bot code that does not catch a
 *   private chat's 403 does not fail the update: its user blocked the bot, nothing more.
 * - `ctx.session` is the bot state's session for the key `<from.id>:<chat.id>` (telegraf's
 *   default); whatever the middleware changes is recorded as ONE `SessionChanged` merge patch.
 * - Per-user memory: a `UserSeen` event when a user is new or their name or language changed, and
 *   a `MessageReceived` for every message.
 * Deterministic in (update, state, recorded time): telegraf's Context reads no clock.
 */

/** The context bot code sees: telegraf's, with the session and our recorded time. */
export interface BotContext extends Context {
  session: Record<string, unknown> | undefined
  /** The update's recorded receive time (ISO-8601): the clock a handler may read. */
  readonly at: string
  /**
   * The bot's state before this update, read-only: its configuration, and the users and sessions
   * it asks for (`botState.users.get(id)`, `botState.sessions.get(key)`).
   */
  readonly botState: BotView
  /**
   * Records imported from the legacy bot, read-only: `ctx.legacy.todos.get("0")` (a
   * telegraf-session-local top-level `todos`), `ctx.legacy.settings.get("welcome")` (the generic
   * layout). See `legacyRecords`.
   */
  readonly legacy: LegacyRecords
  /**
   * Records a fact this update caused (an AI reply, a summary, an adaptation...), appended with
   * the update's last step like the session patch; facts recorded in earlier steps (before a call
   * was answered) are dropped with that step, so each is recorded once.
   */
  readonly record: (event: DomainEvent) => void
  /** The owner's other bots: typed messages (`send`, `message`) and user tags (fleetContext.ts). */
  readonly fleet: Fleet
}

/** One imported collection: its records by key (as `botfleet import` reports them). */
export interface LegacyCollection {
  readonly get: (key: string) => Json | undefined
}

export type LegacyRecords = Readonly<Record<string, LegacyCollection>>

const GENERIC_COLLECTIONS: ReadonlySet<string> = new Set(["users", "chats", "messages", "settings"])

/**
 * `ctx.legacy.<name>`: the generic layout's collections by their name, a telegraf-session-local
 * file's own top-level keys by theirs (collection `data.<name>`; `ctx.legacy["data.users"]` for
 * one named like a generic collection). Reads go through the view, so they load on demand.
 */
export const legacyRecords = (view: BotView): LegacyRecords =>
  new Proxy({} as Record<string, LegacyCollection>, {
    get: (_target, name) => {
      if (typeof name !== "string") return undefined
      const collection = GENERIC_COLLECTIONS.has(name) || name.startsWith("data.") ? name : `data.${name}`
      return { get: (key: string) => view.legacy.get(collection, key) }
    },
    set: () => false,
    deleteProperty: () => false
  })

const sessionKeyOf = (update: Update): string | undefined => {
  const u = update as unknown as Record<string, { from?: { id?: number }; chat?: { id?: number }; message?: { chat?: { id?: number } } } | undefined>
  for (const kind of Object.keys(u)) {
    const v = u[kind]
    if (!v || typeof v !== "object") continue
    const fromId = v.from?.id
    const chatId = v.chat?.id ?? v.message?.chat?.id
    if (fromId !== undefined && chatId !== undefined) return `${fromId}:${chatId}`
  }
  return undefined
}

const botInfoOf = (state: BotView): UserFromGetMe => {
  const cfg = state.config as { username?: unknown; telegramId?: unknown }
  const name = state.name ?? "bot"
  return {
    id: typeof cfg.telegramId === "number" ? cfg.telegramId : 0,
    is_bot: true,
    first_name: name,
    username: typeof cfg.username === "string" ? cfg.username : name,
    can_join_groups: true,
    can_read_all_group_messages: false,
    supports_inline_queries: false
  }
}

const memoryEvents = (ctx: UpdateContext): DomainEvent[] => {
  const m = ctx.update.message
  const events: DomainEvent[] = []
  const from = (m?.from ?? (ctx.update["callback_query"] as { from?: unknown } | undefined)?.from) as
    | { id: number; first_name?: string; last_name?: string; username?: string; language_code?: string; is_bot?: boolean }
    | undefined
  if (from && !from.is_bot) {
    const known = ctx.state.users.get(from.id)
    const changed =
      !known ||
      known.firstName !== (from.first_name ?? "") ||
      known.lastName !== from.last_name ||
      known.username !== from.username ||
      known.languageCode !== from.language_code
    if (changed) {
      events.push({
        _tag: "UserSeen",
        userId: from.id,
        firstName: from.first_name ?? "",
        ...(from.last_name !== undefined ? { lastName: from.last_name } : {}),
        ...(from.username !== undefined ? { username: from.username } : {}),
        ...(from.language_code !== undefined ? { languageCode: from.language_code } : {}),
        at: ctx.at
      })
    }
  }
  if (m) {
    events.push({
      _tag: "MessageReceived",
      chatId: m.chat.id,
      chatType: m.chat.type,
      ...(m.from ? { userId: m.from.id } : {}),
      messageId: m.message_id,
      ...(typeof m.text === "string" ? { text: m.text } : {}),
      at: ctx.at
    })
  }
  return events
}

/** Marks the 403 refusals of private chats: the user blocked the bot. */
const BLOCKED = Object.freeze({ recorded: "the user blocked the bot" })

/** Wraps a Composer as the decider's `UpdateHandler`. */
export const telegrafHandler = (composer: Composer<BotContext>): UpdateHandler => {
  const middleware = composer.middleware()
  return {
    handle: async (uctx) => {
      const update = uctx.update as unknown as Update
      const botInfo = botInfoOf(uctx.state)
      const events: DomainEvent[] = memoryEvents(uctx)
      // a throwaway client: the token is never needed because nothing is sent from here
      const telegram = new Telegram("recorded", { apiRoot: "http://recorded.invalid" })
      telegram.callApi = (async (method: string, payload: Record<string, unknown> = {}) => {
        try {
          // files become references to their content (uploads.ts): the intent records the hash, not the bytes
          return await uctx.call(method, jsonClone(recordableParams(payload)) as Record<string, unknown>)
        } catch (e) {
          // telegraf code checks `instanceof TelegramError` and `.code`: give it Telegram's refusal in that shape
          if (e instanceof RecordedCallFailed) {
            throw new TelegramError(
              {
                error_code: e.errorCode,
                description: e.description,
                ...(e.retryAfter !== undefined ? { parameters: { retry_after: e.retryAfter } } : {})
              },
              // a private chat's 403: its user blocked the bot (now or before); not the bot's failure
              e.errorCode === 403 && (chatIdOf(payload["chat_id"]) ?? 0) > 0 ? BLOCKED : undefined
            )
          }
          throw e
        }
      }) as Telegram["callApi"]

      const ctx = new Context(update, telegram, botInfo) as BotContext
      const key = sessionKeyOf(update)
      const before = key !== undefined ? uctx.state.sessions.get(key) : undefined
      const recorded: DomainEvent[] = []
      const record = (e: DomainEvent) => void recorded.push(e)
      Object.assign(ctx, { at: uctx.at, botState: uctx.state, legacy: legacyRecords(uctx.state), record, fleet: fleetOf({ update, telegram, record }) })
      ctx.session = before !== undefined && before !== null && typeof before === "object" ? (jsonClone(before) as Record<string, unknown>) : undefined

      try {
        await middleware(ctx, () => Promise.resolve())
      } catch (e) {
        // bot code that did not catch the refusal of a blocked chat: the update is still handled
        if (!(e instanceof TelegramError && e.on === BLOCKED)) throw e
      }

      events.push(...recorded)
      if (key !== undefined) {
        const patch = diffMergePatch(before ?? undefined, ctx.session)
        if (patch !== undefined) events.push({ _tag: "SessionChanged", key, patch })
      }
      return events
    }
  }
}
