import { Composer } from "telegraf"
import { RecordedCallUnknown } from "../../actors/decider/updateHandler.js"
import type { BotContext } from "./telegrafHandler.js"
import { applyPersonality, greetingFor, parseBuiltinConfig } from "./personality.pure.js"
import type { BuiltinConfig } from "./personality.pure.js"

/**
 * The built-in, no-code bot kind. Everything comes from the bot's configuration (owner-edited,
 * `BotConfigChanged` events): greeting, `/start` and `/help`, owner-defined commands and keyword
 * replies, a personality applied to every text, and per-user memory (greets returning users by
 * name, in their language when it knows it).
 */
export const builtinComposer = (raw: unknown): Composer<BotContext> => {
  const config: BuiltinConfig = parseBuiltinConfig(raw)
  const bot = new Composer<BotContext>()
  // a reply whose delivery a crash left unknown is not sent again (it may have arrived): go on
  const say = (ctx: BotContext, text: string) =>
    ctx.reply(applyPersonality(config.personality, text)).catch((e: unknown) => {
      if (e instanceof RecordedCallUnknown) return undefined
      throw e
    })

  bot.start((ctx) => {
    const known = ctx.from ? ctx.botState.users.get(ctx.from.id) : undefined
    // the update's language first; else what the bot knows of the user (an imported profile, say)
    const languageCode = ctx.from?.language_code ?? known?.languageCode
    return say(ctx, greetingFor(config, { firstName: ctx.from?.first_name ?? "", languageCode, returning: known !== undefined }))
  })
  bot.help((ctx) => {
    const lines = Object.entries(config.commands).map(([name, c]) => `/${name} - ${c.description ?? c.reply.slice(0, 40)}`)
    return say(ctx, [config.help, ...lines].filter((l) => l.length > 0).join("\n"))
  })
  for (const [name, command] of Object.entries(config.commands)) {
    bot.command(name, (ctx) => say(ctx, command.reply))
  }
  bot.on("message", (ctx, next) => {
    const text = "text" in ctx.message && typeof ctx.message.text === "string" ? ctx.message.text.toLowerCase() : undefined
    if (text === undefined || text.startsWith("/")) return next()
    // per-chat conversation memory in the session: how many messages this user wrote here
    ctx.session = { ...(ctx.session ?? {}), messages: Number(ctx.session?.["messages"] ?? 0) + 1 }
    const hit = config.keywords.find((k) => text.includes(k.match.toLowerCase()))
    if (hit) return say(ctx, hit.reply)
    if (config.fallback) return say(ctx, config.fallback)
    return next()
  })
  return bot
}
