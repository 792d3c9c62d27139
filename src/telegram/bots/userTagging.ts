import { TAG_FIELD, tagPatch, tagRequestOf, tagsSessionKey } from "../../actors/decider/userTags.js"
import type { UpdateHandler } from "../../actors/decider/updateHandler.js"

/**
 * The bot's side of an owner's tag request (actors/decider/userTags.ts), in front of every bot
 * kind: recorded as one `SessionChanged` of the user's tags session, nothing sent to anyone. A
 * malformed request (put into the inbox by hand) is taken and changes nothing.
 */
export const withUserTags = (inner: UpdateHandler): UpdateHandler => ({
  handle: async (ctx) => {
    if (typeof ctx.update !== "object" || ctx.update === null || !(TAG_FIELD in ctx.update)) return inner.handle(ctx)
    const r = tagRequestOf(ctx.update)
    if (r === null) return []
    return [{ _tag: "SessionChanged", key: tagsSessionKey(r.userId), patch: tagPatch(r.tag, r.on) }]
  }
})
