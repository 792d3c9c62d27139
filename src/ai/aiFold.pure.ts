import type { Json } from "../actors/decider/mergePatch.js"
import type { EventOf } from "../events/schema/catalogue.js"
import { adapt, readAdaptation } from "../telegram/bots/adaptation.pure.js"
import {
  BOT_USAGE_KEY,
  addTurn,
  conversationEntry,
  conversationKey,
  readConversation,
  readUsage,
  summarized,
  usageEntry,
  userUsageKey,
  withFallback,
  withTokens
} from "./aiState.pure.js"

/**
 * How the AI and personality events change a bot's keyed entries (the decider's `evolve` and
 * `keysOfEvent` delegate here): pure, total, bounded (aiState.pure.ts).
 */

export type AiEvent = EventOf<"AiReplied" | "ConversationSummarized" | "AiFallbackUsed" | "PersonalityAdapted">

/** `p:<user>`: the adaptation entry (the same key as entries.ts's adaptationKey). */
const adaptationKey = (userId: number) => `p:${userId}`

/** The entries the event reads and writes. */
export const aiKeysOfEvent = (e: AiEvent): ReadonlyArray<string> => {
  switch (e._tag) {
    case "AiReplied":
      return [conversationKey(e.chatId), BOT_USAGE_KEY, ...(e.userId !== undefined ? [userUsageKey(e.userId)] : [])]
    case "ConversationSummarized":
      return [conversationKey(e.chatId)]
    case "AiFallbackUsed":
      return [BOT_USAGE_KEY, ...(e.userId !== undefined ? [userUsageKey(e.userId)] : [])]
    case "PersonalityAdapted":
      return [adaptationKey(e.userId)]
  }
}

const adaptationJson = (a: ReturnType<typeof readAdaptation>): Json => JSON.parse(JSON.stringify(a)) as Json

/** The entries' new values after the event, given the current ones. */
export const aiEntryWrites = (e: AiEvent, read: (key: string) => Json | undefined): ReadonlyArray<readonly [string, Json]> => {
  switch (e._tag) {
    case "AiReplied": {
      const tokens = e.promptTokens + e.completionTokens
      const writes: Array<readonly [string, Json]> = [
        [conversationKey(e.chatId), conversationEntry(addTurn(readConversation(read(conversationKey(e.chatId))), { user: e.user, assistant: e.assistant }))],
        [BOT_USAGE_KEY, usageEntry(withTokens(readUsage(read(BOT_USAGE_KEY), e.day), e.day, tokens))]
      ]
      if (e.userId !== undefined) writes.push([userUsageKey(e.userId), usageEntry(withTokens(readUsage(read(userUsageKey(e.userId)), e.day), e.day, tokens))])
      return writes
    }
    case "ConversationSummarized":
      return [[conversationKey(e.chatId), conversationEntry(summarized(readConversation(read(conversationKey(e.chatId))), e.summary, e.dropped))]]
    case "AiFallbackUsed": {
      const writes: Array<readonly [string, Json]> = [[BOT_USAGE_KEY, usageEntry(withFallback(readUsage(read(BOT_USAGE_KEY), e.day), e.day, e.reason, e.at))]]
      if (e.userId !== undefined) writes.push([userUsageKey(e.userId), usageEntry(withFallback(readUsage(read(userUsageKey(e.userId)), e.day), e.day, e.reason, e.at))])
      return writes
    }
    case "PersonalityAdapted": {
      const { userId: _u, at: _a, _tag: _t, ...change } = e
      return [[adaptationKey(e.userId), adaptationJson(adapt(readAdaptation(read(adaptationKey(e.userId))), change))]]
    }
  }
}
