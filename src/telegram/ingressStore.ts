import { Effect, Either } from "effect"
import type { InboxService, InboxUnavailable, InvalidUpdate } from "../actors/inbox.js"
import type { UpdateDedupe } from "./updateDedupe.js"

/**
 * Where the webhook ingress puts an accepted update: the bot's inbox, unless the edge dedupe
 * remembers the (bot, update_id) already. The promise settles only once the update is durable in
 * the inbox (DESIGN invariant 2); it rejects with `InboxUnavailable` (→ 503, Telegram delivers
 * again) or `InvalidUpdate` (→ 400).
 *
 * A plain promise rather than an Effect: it is called once per webhook request, the node's
 * hottest path, and an Effect runtime per request was a visible share of its profile.
 */
export interface IngressStore {
  readonly accept: (botId: string, update: { readonly update_id: number }) => Promise<"stored" | "duplicate">
}

/**
 * Any inbox with an optional dedupe (embedded mode, tests): seen? → enqueue → remember, three
 * steps. A dedupe store that cannot answer is no reason to refuse: the decider dedupes anyway.
 */
export const inboxIngressStore = (inbox: InboxService, dedupe?: UpdateDedupe): IngressStore => ({
  accept: async (botId, update) => {
    if (dedupe) {
      const seen = await Effect.runPromise(Effect.either(dedupe.seen(botId, update.update_id)))
      if (Either.isRight(seen) && seen.right) return "duplicate"
    }
    const stored = await Effect.runPromise(Effect.either(inbox.enqueue(botId, update)))
    if (Either.isLeft(stored)) throw stored.left satisfies InboxUnavailable | InvalidUpdate
    if (dedupe) await Effect.runPromise(Effect.ignore(dedupe.remember(botId, update.update_id)))
    return "stored"
  }
})
