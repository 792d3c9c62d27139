import { Schema } from "effect"

/**
 * The configuration schema of the built-in kind's interactive settings (`unknownCommand`, `menus`,
 * `startMenu`), spread into `builtinConfigFields`, so `bots configure` checks them with the rest
 * and reports each problem at its path. Telegram's limits are checked here (64-byte callback data
 * is guaranteed by the name lengths, 200 characters for a callback notice, 100 buttons per
 * keyboard) so a config that fits is one Telegram accepts.
 */

const NAME = /^[a-z0-9_]{1,32}$/
const nameMessage = "a menu name is 1-32 lower-case letters, digits or _"

const Text = (max: number) =>
  Schema.String.pipe(
    Schema.minLength(1, { message: () => "must not be empty" }),
    Schema.maxLength(max, { message: () => `must be at most ${max} characters` })
  )

const MenuButton = Schema.Struct({
  /** The label on the button. */
  text: Text(64),
  /** A link: Telegram opens it, the bot hears nothing. */
  url: Schema.optionalWith(
    Schema.String.pipe(Schema.pattern(/^(https?|tg):\/\/\S+$/, { message: () => "must be an http(s):// or tg:// link" }), Schema.maxLength(2048)),
    { exact: true }
  ),
  /** A short notice on the user's screen (answerCallbackQuery). */
  answer: Schema.optionalWith(Text(200), { exact: true }),
  /** A message sent into the chat. */
  reply: Schema.optionalWith(Text(4096), { exact: true }),
  /** The menu shown in place of this one. */
  menu: Schema.optionalWith(Schema.String.pipe(Schema.pattern(NAME, { message: () => nameMessage })), { exact: true }),
  /** Hands the user to another bot of the same owner (its bot id), which greets them with the context. */
  handoff: Schema.optionalWith(
    Schema.Struct({
      to: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, { message: () => "must be a bot id of the fleet" })),
      context: Text(2048)
    }),
    { exact: true }
  ),
  /**
   * Sends a typed message to another bot of the same owner (botMessage.ts); in the payload's
   * strings, "{userId}" and "{chatId}" are the presser's (a string that is exactly one of them
   * becomes the number).
   */
  send: Schema.optionalWith(
    Schema.Struct({
      to: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, { message: () => "must be a bot id of the fleet" })),
      name: Schema.String.pipe(Schema.pattern(/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/, { message: () => "a message name is 1 to 64 letters, digits, _, . or -, starting with a letter" })),
      payload: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.Union(Schema.String, Schema.Number, Schema.Boolean, Schema.Null) }), { exact: true })
    }),
    { exact: true }
  ),
  /** Tags the user who pressed it (broadcast segments select tags: tag=vip). */
  tag: Schema.optionalWith(
    Schema.String.pipe(Schema.pattern(/^[a-z0-9][a-z0-9_-]{0,31}$/, { message: () => "a tag is 1 to 32 lower-case letters, digits, _ or -" })),
    { exact: true }
  )
}).pipe(
  Schema.filter((b) => {
    const acts = b.answer !== undefined || b.reply !== undefined || b.menu !== undefined || b.handoff !== undefined || b.send !== undefined || b.tag !== undefined
    if (b.url !== undefined && acts) return "a button is either a link (url) or acts when pressed (answer, reply, menu, handoff, send, tag), not both"
    if (b.url === undefined && !acts) return "a button needs url, answer, reply, menu, handoff, send or tag"
    return true
  })
)

const Menu = Schema.Struct({
  text: Text(4096),
  buttons: Schema.Array(Schema.Array(MenuButton).pipe(Schema.minItems(1), Schema.maxItems(8))).pipe(
    Schema.minItems(1, { message: () => "a menu needs at least one row of buttons" }),
    Schema.filter((rows) => rows.reduce((n, r) => n + r.length, 0) <= 100 || "a keyboard holds at most 100 buttons")
  ),
  /** The command that opens the menu (`menu` for /menu). */
  command: Schema.optionalWith(
    Schema.String.pipe(
      Schema.pattern(/^\/?[a-z0-9_]{1,32}$/, { message: () => "a command is 1-32 lower-case letters, digits or _ (e.g. menu)" }),
      Schema.filter((c) => !["start", "help"].includes(c.replace(/^\//, "")) || "start and help are built in: use startMenu for the greeting")
    ),
    { exact: true }
  ),
  /** Its line in /help. */
  description: Schema.optionalWith(Text(256), { exact: true })
})

export const interactionsConfigFields = {
  /** What this bot greets a user handed to it with: {name}, {from} (the bot that handed them), {context}. */
  handoffGreeting: Schema.optionalWith(Text(4096), { exact: true }),
  /**
   * The reply to a command the bot does not know; false: no reply. Default (absent): "I don't know
   * that command, try /help". Not null for "none": in a config patch null removes the key.
   */
  unknownCommand: Schema.optionalWith(Schema.Union(Text(4096), Schema.Literal(false)), { exact: true }),
  /** Inline-keyboard menus by name; a button may open another menu of this record. */
  menus: Schema.optionalWith(
    Schema.Record({ key: Schema.String, value: Menu }).pipe(
      Schema.filter((menus) =>
        Object.entries(menus).flatMap(([name, m]) => [
          ...(NAME.test(name) ? [] : [{ path: [name], message: nameMessage }]),
          ...m.buttons.flatMap((row, r) =>
            row.flatMap((b, c) =>
              b.menu !== undefined && menus[b.menu] === undefined ? [{ path: [name, "buttons", r, c, "menu"], message: `no menu named ${b.menu} in menus` }] : []
            )
          )
        ])
      )
    ),
    { exact: true }
  ),
  /** The menu shown under the /start greeting (a name in menus). */
  startMenu: Schema.optionalWith(Schema.String.pipe(Schema.pattern(NAME, { message: () => nameMessage })), { exact: true })
}

/** A `startMenu` must name one of `menus` (checked on the whole config: the two are siblings). */
export const startMenuProblem = (c: { readonly startMenu?: string; readonly menus?: Readonly<Record<string, unknown>> }) =>
  c.startMenu === undefined || c.menus?.[c.startMenu] !== undefined || { path: ["startMenu"], message: `no menu named ${c.startMenu} in menus` }
