import { randomUUID } from "node:crypto"
import { Data, Effect } from "effect"
import type { InboxService } from "../actors/inbox.js"
import { tagProblem, tagUpdate } from "../actors/decider/userTags.js"

/** A tag request that cannot be made (bad user id or tag): nothing was put into the inbox. */
export class UserTagInvalid extends Data.TaggedError("UserTagInvalid")<{ readonly reason: string }> {
  override get message() {
    return `${this.reason}; nothing was changed`
  }
}

export interface TagRequested {
  readonly botId: string
  readonly userId: number
  readonly tag: string
  readonly tagged: boolean
  /** The request is in the bot's inbox: the bot records it when it takes it (at once when it runs). */
  readonly queued: true
}

/**
 * Puts an owner's tag request (actors/decider/userTags.ts) into the bot's inbox, durably, after
 * checking it; the caller has checked that the bot is the owner's. `botfleet users tag` and the
 * REST API both go through here.
 */
export const requestTag = (inbox: InboxService, o: { readonly botId: string; readonly userId: number; readonly tag: string; readonly on: boolean }) =>
  Effect.gen(function* () {
    const tag = o.tag.toLowerCase()
    const problem = tagProblem(o.userId, tag)
    if (problem !== null) return yield* new UserTagInvalid({ reason: problem })
    yield* inbox.enqueue(o.botId, tagUpdate({ requestId: randomUUID(), userId: o.userId, tag, on: o.on }))
    return { botId: o.botId, userId: o.userId, tag, tagged: o.on, queued: true } satisfies TagRequested
  })
