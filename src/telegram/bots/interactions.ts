import { Composer, TelegramError } from "telegraf"
import { RecordedCallUnknown } from "../../actors/decider/updateHandler.js"
import { actionsOf, buttonOfCallback, fillPayload, isBuiltinCallback, keyboardOf, parseInteractions, unknownCommandDue } from "./interactions.pure.js"
import type { InteractionsConfig } from "./interactions.pure.js"
import type { BotContext } from "./telegrafHandler.js"
import { handOff } from "./handoffGreeting.js"
import { BotMessageRefused } from "./fleetContext.js"

/**
 * The built-in kind's menus, callback buttons and unknown-command reply, as telegraf middleware
 * (owners' modules may use them too). Every Bot API call goes through the recorded calls, so a
 * button press is replayed from its recorded results like any other update.
 */

/** Sends a text into the update's chat with the bot's personality applied, optionally with a keyboard. */
export type Say = (ctx: BotContext, text: string, extra?: { readonly reply_markup?: unknown }) => Promise<unknown>

/**
 * Ignores what a failed notice or menu edit leaves: a callback answered too late (Telegram keeps a
 * query for about 15 s), a message no longer there, or an outcome a crash left unknown. The user
 * loses the notice, not the update.
 */
const tolerate = (p: Promise<unknown>): Promise<unknown> =>
  p.catch((e: unknown) => {
    if (e instanceof RecordedCallUnknown || (e instanceof TelegramError && e.code === 400)) return undefined
    throw e
  })

/** Menus: their commands, and what their buttons do when pressed. */
export const menusComposer = (config: InteractionsConfig, say: Say): Composer<BotContext> => {
  const bot = new Composer<BotContext>()
  for (const [name, menu] of Object.entries(config.menus)) {
    if (menu.command !== undefined) bot.command(menu.command, (ctx) => say(ctx, menu.text, { reply_markup: keyboardOf(name, menu) }))
  }
  bot.on("callback_query", async (ctx, next) => {
    const q = ctx.callbackQuery
    const data = "data" in q && typeof q.data === "string" ? q.data : undefined
    if (data === undefined || !isBuiltinCallback(data)) return next()
    const button = buttonOfCallback(config, data)
    // a button of a menu the owner since removed: say so, instead of a spinner that never ends
    if (button === null) return tolerate(ctx.answerCbQuery("This button is no longer available."))
    const actions = actionsOf(button, config)
    if (!actions.some((a) => a._tag === "Answer")) await tolerate(ctx.answerCbQuery())
    for (const a of actions) {
      switch (a._tag) {
        case "Answer":
          await tolerate(ctx.answerCbQuery(a.text))
          break
        case "Reply":
          await say(ctx, a.text)
          break
        case "OpenMenu": {
          const menu = config.menus[a.menu]!
          if (q.message) await tolerate(ctx.editMessageText(menu.text, { reply_markup: keyboardOf(a.menu, menu) }))
          else await say(ctx, menu.text, { reply_markup: keyboardOf(a.menu, menu) })
          break
        }
        case "HandOff":
          // refused (another owner's bot, no such bot) or unknown: recorded; the user is told it did not work
          await handOff(ctx, { to: a.to, context: a.context }).catch(async (e: unknown) => {
            if (!(e instanceof TelegramError)) throw e
            await say(ctx, "Sorry, I could not pass you on right now.")
          })
          break
        case "SendMessage": {
          // refused (another owner's bot, no such bot, bad payload): recorded; the user is told it did not work
          const who = { userId: ctx.from?.id ?? 0, chatId: ctx.chat?.id ?? ctx.from?.id ?? 0 }
          await ctx.fleet.send(a.to, a.name, fillPayload(a.payload, who)).catch(async (e: unknown) => {
            if (!(e instanceof BotMessageRefused)) throw e
            await say(ctx, "Sorry, that did not work right now.")
          })
          break
        }
        case "TagUser":
          if (ctx.from) ctx.fleet.tag(ctx.from.id, a.tag)
          break
        default: {
          const never: never = a
          return never
        }
      }
    }
  })
  return bot
}

/**
 * The unknown-command reply, for a message that is a command no earlier middleware handled; put it
 * after every command. `known` lists the commands handled before it (telegraf's `command` passes
 * on `/hours@other_bot`, and so does this).
 */
export const unknownCommandComposer = (config: InteractionsConfig, known: ReadonlyArray<string>, say: Say): Composer<BotContext> => {
  const bot = new Composer<BotContext>()
  const knownSet = new Set(["start", "help", ...known, ...Object.values(config.menus).flatMap((m) => (m.command !== undefined ? [m.command] : []))])
  bot.on("message", (ctx, next) => {
    const text = "text" in ctx.message && typeof ctx.message.text === "string" ? ctx.message.text : undefined
    if (config.unknownCommand === null || text === undefined) return next()
    if (!unknownCommandDue({ text, chatType: ctx.chat.type, botUsername: ctx.botInfo.username, known: knownSet })) return next()
    return say(ctx, config.unknownCommand)
  })
  return bot
}

export { parseInteractions }
