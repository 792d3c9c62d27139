import { TAG_PATTERN } from "../../actors/decider/userTags.js"
/**
 * The built-in kind's interactive parts, read from its configuration: the reply to an unknown
 * command, and menus (inline keyboards whose buttons answer, reply, or open another menu). Pure:
 * the same configuration and update give the same texts and keyboards on replay. Kept apart from
 * personality.pure.ts so the two grow independently; the configuration schema is
 * interactionsSchema.pure.ts.
 */

/** The default answer to a command the bot does not know (a user who typed `/stats` gets told). */
export const DEFAULT_UNKNOWN_COMMAND = "I don't know that command, try /help"

/** Callback data of the built-in kind's buttons: `bf:<menu>:<row>.<col>` (at most 64 bytes, Telegram's limit). */
const CALLBACK = /^bf:([a-z0-9_]{1,32}):(\d{1,2})\.(\d{1,2})$/

export type ButtonAction =
  | { readonly _tag: "Answer"; readonly text: string }
  | { readonly _tag: "Reply"; readonly text: string }
  | { readonly _tag: "OpenMenu"; readonly menu: string }
  | { readonly _tag: "HandOff"; readonly to: string; readonly context: string }
  | { readonly _tag: "SendMessage"; readonly to: string; readonly name: string; readonly payload: Readonly<Record<string, unknown>> }
  | { readonly _tag: "TagUser"; readonly tag: string }

export interface MenuButton {
  readonly text: string
  /** A link button (Telegram opens it; no callback), or the actions run when it is pressed, in order. */
  readonly url?: string
  /** A short notice shown on the user's screen (answerCallbackQuery's text). */
  readonly answer?: string
  /** A message sent into the chat. */
  readonly reply?: string
  /** Another menu shown in place of this one (the message is edited). */
  readonly menu?: string
  /** Hands the user to another bot of the same owner, which greets them with `context` (decider/handoff.ts). */
  readonly handoff?: { readonly to: string; readonly context: string }
  /** Sends a typed message to another bot of the same owner (decider/botMessage.ts). */
  readonly send?: { readonly to: string; readonly name: string; readonly payload: Readonly<Record<string, unknown>> }
  /** Tags the user who pressed it (decider/userTags.ts). */
  readonly tag?: string
}

export interface Menu {
  readonly text: string
  readonly buttons: ReadonlyArray<ReadonlyArray<MenuButton>>
  /** The command that opens it (`/menu`), if any. */
  readonly command?: string
  readonly description?: string
}

export interface InteractionsConfig {
  /** The answer to an unknown command; null: unknown commands get no reply (configured as false). */
  readonly unknownCommand: string | null
  readonly menus: Readonly<Record<string, Menu>>
  /** The menu attached to the /start greeting, if any. */
  readonly startMenu: string | null
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)
const NAME = /^[a-z0-9_]{1,32}$/

const buttonOf = (v: unknown): MenuButton | null => {
  if (!isObject(v) || typeof v["text"] !== "string" || v["text"].length === 0) return null
  const b: { -readonly [K in keyof MenuButton]: MenuButton[K] } = { text: v["text"] }
  for (const k of ["url", "answer", "reply", "menu"] as const) if (typeof v[k] === "string" && v[k].length > 0) b[k] = v[k]
  const h = v["handoff"]
  if (isObject(h) && typeof h["to"] === "string" && typeof h["context"] === "string") b.handoff = { to: h["to"], context: h["context"] }
  const snd = v["send"]
  if (typeof v["tag"] === "string" && TAG_PATTERN.test(v["tag"])) b.tag = v["tag"]
  if (isObject(snd) && typeof snd["to"] === "string" && typeof snd["name"] === "string") b.send = { to: snd["to"], name: snd["name"], payload: isObject(snd["payload"]) ? snd["payload"] : {} }
  return b
}

/**
 * Reads the interactive settings leniently, like parseBuiltinConfig: what is malformed is left
 * out rather than breaking the bot (the schema refuses it on write; this guards older configs).
 */
export const parseInteractions = (raw: unknown): InteractionsConfig => {
  const c = isObject(raw) ? raw : {}
  const menus: Record<string, Menu> = {}
  if (isObject(c["menus"])) {
    for (const [name, m] of Object.entries(c["menus"])) {
      if (!NAME.test(name) || !isObject(m) || typeof m["text"] !== "string" || !Array.isArray(m["buttons"])) continue
      const rows = (m["buttons"] as unknown[]).flatMap((row) => (Array.isArray(row) ? [row.flatMap((b) => buttonOf(b) ?? [])] : [])).filter((r) => r.length > 0)
      const command = typeof m["command"] === "string" ? m["command"].replace(/^\//, "") : undefined
      menus[name] = {
        text: m["text"],
        buttons: rows,
        ...(command !== undefined && NAME.test(command) ? { command } : {}),
        ...(typeof m["description"] === "string" ? { description: m["description"] } : {})
      }
    }
  }
  const startMenu = typeof c["startMenu"] === "string" && menus[c["startMenu"]] !== undefined ? c["startMenu"] : null
  return {
    unknownCommand: c["unknownCommand"] === false ? null : typeof c["unknownCommand"] === "string" ? c["unknownCommand"] : DEFAULT_UNKNOWN_COMMAND,
    menus,
    startMenu
  }
}

/** An inline keyboard as the Bot API takes it (`reply_markup`), for one menu. */
export const keyboardOf = (name: string, menu: Menu): { inline_keyboard: Array<Array<{ text: string; url: string } | { text: string; callback_data: string }>> } => ({
  inline_keyboard: menu.buttons.map((row, r) =>
    row.map((b, c): { text: string; url: string } | { text: string; callback_data: string } =>
      b.url !== undefined ? { text: b.text, url: b.url } : { text: b.text, callback_data: `bf:${name}:${r}.${c}` }
    )
  )
})

/** The button a callback names, or null (not one of ours, or from a menu the config no longer has). */
export const buttonOfCallback = (config: InteractionsConfig, data: string): MenuButton | null => {
  const m = CALLBACK.exec(data)
  if (!m) return null
  const button = config.menus[m[1]!]?.buttons[Number(m[2])]?.[Number(m[3])]
  return button && button.url === undefined ? button : null
}

/** Whether callback data is in the built-in kind's format at all (ours, even if stale). */
export const isBuiltinCallback = (data: string): boolean => data.startsWith("bf:")

/** What pressing a button does, in order: the notice first (it ends the client's spinner), then the message, the menu, the handoff. */
export const actionsOf = (button: MenuButton, config: InteractionsConfig): ReadonlyArray<ButtonAction> => [
  ...(button.answer !== undefined ? [{ _tag: "Answer" as const, text: button.answer }] : []),
  ...(button.reply !== undefined ? [{ _tag: "Reply" as const, text: button.reply }] : []),
  ...(button.menu !== undefined && config.menus[button.menu] !== undefined ? [{ _tag: "OpenMenu" as const, menu: button.menu }] : []),
  ...(button.handoff !== undefined ? [{ _tag: "HandOff" as const, to: button.handoff.to, context: button.handoff.context }] : []),
  ...(button.send !== undefined ? [{ _tag: "SendMessage" as const, to: button.send.to, name: button.send.name, payload: button.send.payload }] : []),
  ...(button.tag !== undefined ? [{ _tag: "TagUser" as const, tag: button.tag }] : [])
]

/** A button's payload with "{userId}" and "{chatId}" filled in: a string that is exactly one becomes the number. */
export const fillPayload = (payload: Readonly<Record<string, unknown>>, who: { readonly userId: number; readonly chatId: number }): Record<string, unknown> =>
  Object.fromEntries(
    Object.entries(payload).map(([k, v]) => {
      if (typeof v !== "string") return [k, v]
      if (v === "{userId}") return [k, who.userId]
      if (v === "{chatId}") return [k, who.chatId]
      return [k, v.replaceAll("{userId}", String(who.userId)).replaceAll("{chatId}", String(who.chatId))]
    })
  )

/**
 * The command a message starts with, if it is one addressed to this bot: `/stats` or
 * `/stats@this_bot` (any case). A command addressed to another bot (`/stats@other_bot`) is not
 * this bot's to answer, so it yields null.
 */
export const commandOf = (text: string, botUsername: string | undefined): string | null => {
  const m = /^\/([A-Za-z0-9_]{1,64})(?:@([A-Za-z0-9_]{3,64}))?(?:\s|$)/.exec(text)
  if (!m) return null
  if (m[2] !== undefined && (botUsername === undefined || m[2].toLowerCase() !== botUsername.toLowerCase())) return null
  return m[1]!.toLowerCase()
}

/**
 * Whether the unknown-command reply is due: the command is not one the bot knows, and the chat is
 * private, or the command names this bot. In a group a bare `/stats` may be meant for another bot
 * there, and answering every such command would be noise.
 */
export const unknownCommandDue = (o: {
  readonly text: string
  readonly chatType: string
  readonly botUsername: string | undefined
  readonly known: ReadonlySet<string>
}): boolean => {
  const command = commandOf(o.text, o.botUsername)
  if (command === null || o.known.has(command)) return false
  return o.chatType === "private" || /^\/[A-Za-z0-9_]+@/.test(o.text)
}
