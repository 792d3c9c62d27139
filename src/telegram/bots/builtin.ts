import { Composer } from "telegraf"
import { adaptationKey } from "../../actors/decider/entries.js"
import { RecordedCallUnknown } from "../../actors/decider/updateHandler.js"
import { adapt, adaptationChange, readAdaptation } from "./adaptation.pure.js"
import { aiReply } from "./aiReply.js"
import type { BotContext } from "./telegrafHandler.js"
import { applyPersona } from "./persona.pure.js"
import type { Adaptation } from "./persona.pure.js"
import { greetingFor, parseBuiltinConfig } from "./personality.pure.js"
import type { BuiltinConfig } from "./personality.pure.js"
import { menusComposer, parseInteractions, unknownCommandComposer } from "./interactions.js"
import { keyboardOf } from "./interactions.pure.js"
import { declaredMessagesOf, notifyText } from "./botMessagesSchema.pure.js"
import { TelegramError } from "telegraf"

/**
 * The built-in, no-code bot kind. Everything comes from the bot's configuration (owner-edited,
 * `BotConfigChanged` events): greeting, `/start` and `/help`, owner-defined commands and keyword
 * replies, a persona applied to every text, per-user memory (greets returning users by name, in
 * their language when it knows it), per-user adaptation (PersonalityAdapted), and with an `ai`
 * section, model-written answers to other texts (aiReply.ts).
 */
export const builtinComposer = (raw: unknown): Composer<BotContext> => {
  const config: BuiltinConfig = parseBuiltinConfig(raw)
  const bot = new Composer<BotContext>()
  const adaptationOf = (ctx: BotContext): Adaptation => (ctx.state as { adaptation?: Adaptation }).adaptation ?? {}
  // a reply whose delivery a crash left unknown is not sent again (it may have arrived): go on
  const interactions = parseInteractions(raw)
  const say = (ctx: BotContext, text: string, extra?: { readonly reply_markup?: unknown }) =>
    ctx.reply(applyPersona(config.personality, text, adaptationOf(ctx)), extra as Parameters<BotContext["reply"]>[1]).catch((e: unknown) => {
      if (e instanceof RecordedCallUnknown) return undefined
      throw e
    })

  // a typed message from one of the owner's other bots (its payload already checked): the declared notify, if any
  const declared = declaredMessagesOf(raw)
  bot.use(async (ctx, next) => {
    const m = ctx.fleet.message
    if (m === null) return next()
    const notify = declared.get(m.name)?.notify
    const payload = m.payload as Record<string, unknown>
    if (notify === undefined) return
    const text = applyPersona(config.personality, notifyText(notify.text, payload), {})
    // a chat that never opened this bot (403) or a send a crash left unknown: the message is still taken
    await ctx.telegram.sendMessage(payload[notify.chat] as number, text).catch((e: unknown) => {
      if (e instanceof RecordedCallUnknown || e instanceof TelegramError) return undefined
      throw e
    })
  })
  // what this message says about how its user likes to be spoken to, learned before anything is said
  bot.use((ctx, next) => {
    const from = ctx.from
    const text = ctx.message && "text" in ctx.message && typeof ctx.message.text === "string" ? ctx.message.text : undefined
    if (!config.adapt || !from || from.is_bot) return next()
    let known = readAdaptation(ctx.botState.entries.get(adaptationKey(from.id)))
    if (text !== undefined && !text.startsWith("/")) {
      const change = adaptationChange(known, { text, languageCode: from.language_code })
      if (change) {
        ctx.record({ _tag: "PersonalityAdapted", userId: from.id, ...change, at: ctx.at })
        known = adapt(known, change)
      }
    }
    ;(ctx.state as { adaptation?: Adaptation }).adaptation = known
    return next()
  })
  bot.start((ctx) => {
    const known = ctx.from ? ctx.botState.users.get(ctx.from.id) : undefined
    // what the bot learned of the user's language first, then the update's, then what it knows (an imported profile, say)
    const languageCode = adaptationOf(ctx).language ?? ctx.from?.language_code ?? known?.languageCode
    const start = interactions.startMenu
    const extra = start !== null ? { reply_markup: keyboardOf(start, interactions.menus[start]!) } : undefined
    return say(ctx, greetingFor(config, { firstName: ctx.from?.first_name ?? "", languageCode, returning: known !== undefined }), extra)
  })
  bot.help((ctx) => {
    const lines = [
      ...Object.entries(config.commands).map(([name, c]) => `/${name} - ${c.description ?? c.reply.slice(0, 40)}`),
      ...Object.values(interactions.menus).flatMap((m) => (m.command !== undefined && config.commands[m.command] === undefined ? [`/${m.command} - ${m.description ?? m.text.slice(0, 40)}`] : []))
    ]
    return say(ctx, [config.help, ...lines].filter((l) => l.length > 0).join("\n"))
  })
  for (const [name, command] of Object.entries(config.commands)) {
    bot.command(name, (ctx) => say(ctx, command.reply))
  }
  // after the owner's commands (theirs win a clash), before any reply to plain text
  bot.use(menusComposer(interactions, say))
  bot.use(unknownCommandComposer(interactions, Object.keys(config.commands), say))
  bot.on("message", (ctx, next) => {
    const original = "text" in ctx.message && typeof ctx.message.text === "string" ? ctx.message.text : undefined
    const text = original?.toLowerCase()
    if (original === undefined || text === undefined || text.startsWith("/")) return next()
    // per-chat conversation memory in the session: how many messages this user wrote here
    ctx.session = { ...(ctx.session ?? {}), messages: Number(ctx.session?.["messages"] ?? 0) + 1 }
    const hit = config.keywords.find((k) => text.includes(k.match.toLowerCase()))
    if (hit) return say(ctx, hit.reply)
    if (config.ai) return aiReply(ctx, { ai: config.ai, persona: config.personality, adaptation: adaptationOf(ctx), text: original, say: (t) => say(ctx, t) })
    if (config.fallback) return say(ctx, config.fallback)
    return next()
  })
  return bot
}
