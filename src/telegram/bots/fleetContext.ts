import { Data } from "effect"
import { TelegramError } from "telegraf"
import { BOT_MESSAGE_METHOD, botMessageOf } from "../../actors/decider/botMessage.js"
import type { BotMessage } from "../../actors/decider/botMessage.js"
import { tagPatch, tagProblem, tagsSessionKey } from "../../actors/decider/userTags.js"
import type { DomainEvent } from "../../events/schema/catalogue.js"

/**
 * `ctx.fleet`: what a bot's code may do with the rest of its owner's fleet, besides Telegram.
 *
 * - `send(to, name, payload)`: a typed message to another bot of the same owner
 *   (decider/botMessage.ts), a recorded call like a Bot API call: resolves with the message id
 *   (the correlation id on both streams) once it is in the target's inbox; rejects with
 *   `BotMessageRefused` (another owner's bot, no such bot, bad name or payload).
 * - `message`: the message this update delivers (its payload decoded by the schema the bot
 *   declared for its name), or null for a Telegram update.
 * - `tag(userId, tag)` / `untag(...)`: records a tag on one of the bot's users (userTags.ts), with
 *   the update's other events; broadcasts select tags (`tag=vip`).
 */
export interface Fleet {
  readonly send: (to: string, name: string, payload: unknown) => Promise<string>
  readonly message: BotMessage | null
  readonly tag: (userId: number, tag: string) => void
  readonly untag: (userId: number, tag: string) => void
}

/** Why the fleet refused a message: 403 another owner's bot, 404 no such bot, 400 bad name or payload. */
export class BotMessageRefused extends Data.TaggedError("BotMessageRefused")<{
  readonly to: string
  readonly name: string
  readonly reason: "another_owner" | "unknown_bot" | "invalid"
  readonly description: string
}> {
  override get message() {
    return this.description
  }
}

const reasonOf = (code: number): BotMessageRefused["reason"] => (code === 403 ? "another_owner" : code === 404 ? "unknown_bot" : "invalid")

/** What `fleetOf` needs of a telegraf context (kept minimal so this file does not depend on the handler). */
export interface FleetHost {
  readonly update: unknown
  readonly telegram: { readonly callApi: (method: never, payload: never) => Promise<unknown> }
  readonly record: (event: DomainEvent) => void
}

export const fleetOf = (ctx: FleetHost): Fleet => {
  const tagging = (on: boolean) => (userId: number, tag: string) => {
    const problem = tagProblem(userId, tag)
    // a programming error in the bot's code: the update fails and is dead-lettered with this reason
    if (problem !== null) throw new Error(`ctx.fleet.${on ? "tag" : "untag"}: ${problem}`)
    ctx.record({ _tag: "SessionChanged", key: tagsSessionKey(userId), patch: tagPatch(tag, on) })
  }
  return {
    message: botMessageOf(ctx.update),
    send: async (to, name, payload) => {
      try {
        const result = (await ctx.telegram.callApi(BOT_MESSAGE_METHOD as never, { to, name, payload } as never)) as { messageId: string }
        return result.messageId
      } catch (e) {
        if (e instanceof TelegramError) throw new BotMessageRefused({ to, name, reason: reasonOf(e.code), description: e.description })
        throw e
      }
    },
    tag: tagging(true),
    untag: tagging(false)
  }
}
