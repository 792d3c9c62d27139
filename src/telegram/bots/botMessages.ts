import { ParseResult, Schema } from "effect"
import { BOT_MESSAGE_FIELD, botMessageOf, botMessageSessionKey } from "../../actors/decider/botMessage.js"
import type { BotView, UpdateHandler } from "../../actors/decider/updateHandler.js"
import type { DomainEvent } from "../../events/schema/catalogue.js"

/** The payload schemas a bot declares, by message name. */
export type MessageSchemas = ReadonlyMap<string, Schema.Schema.AnyNoContext>

const MAX_REASON = 500

/**
 * The target's side of a bot message (actors/decider/botMessage.ts), in front of every bot kind.
 * It takes each message id once (the session `message:<id>` remembers it: a second delivery after
 * a crash changes nothing), refuses one from another owner's bot (the sender's executor checks
 * too; this holds even for an entry put into the inbox by hand), one whose name the bot does not
 * declare, and one whose payload its schema refuses (the reason recorded, the bot's code never
 * sees it). A good one reaches the kind's code with the payload decoded (`ctx.fleet.message`),
 * and what it does is recorded with the message taken.
 */
export const withBotMessages = (inner: UpdateHandler, schemasOf: (state: BotView) => MessageSchemas): UpdateHandler => ({
  handle: async (ctx) => {
    const m = botMessageOf(ctx.update)
    if (m === null) return inner.handle(ctx)
    const key = botMessageSessionKey(m.messageId)
    if (ctx.state.sessions.get(key) !== undefined) return []
    const taken = (outcome: Record<string, unknown>): DomainEvent => ({ _tag: "SessionChanged", key, patch: { from: m.from, name: m.name, at: ctx.at, ...outcome } })
    if (m.fromOwner !== ctx.state.ownerId) return [taken({ refused: "another owner's bot" })]
    const schema = schemasOf(ctx.state).get(m.name)
    if (schema === undefined) return [taken({ refused: `this bot declares no message named ${m.name}` })]
    const decoded = Schema.decodeUnknownEither(schema, { onExcessProperty: "error", errors: "all" })(m.payload)
    if (decoded._tag === "Left") return [taken({ refused: `payload: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}`.slice(0, MAX_REASON) })]
    const events = await inner.handle({ ...ctx, update: { ...ctx.update, [BOT_MESSAGE_FIELD]: { ...m, payload: decoded.right } } })
    return [...events, taken({ accepted: true })]
  }
})
