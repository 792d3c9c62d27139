import { legacySessionTarget } from "../../actors/decider/legacy.js"
import type { EventOf } from "../../events/schema/catalogue.js"

/*
 * What the projections read from imported legacy records and session keys, beside what the fold
 * reads (actors/decider/legacy.ts).
 */

const FROM_CHAT = /^(\d{1,16}):(-?\d{1,16})$/

/** The user and chat of a runtime session key `<from>:<chat>`; nulls for a custom key. */
export const sessionParties = (key: string): { readonly userId: number | null; readonly chatId: number | null } => {
  const m = FROM_CHAT.exec(key)
  if (!m) return { userId: null, chatId: null }
  const userId = Number(m[1])
  const chatId = Number(m[2])
  return Number.isSafeInteger(userId) && Number.isSafeInteger(chatId) ? { userId, chatId } : { userId: null, chatId: null }
}

const CHAT_TYPES: ReadonlySet<string> = new Set(["private", "group", "supergroup", "channel"])

/**
 * The chat an imported record tells of: a generic `chats` record (with its type), or the chat of
 * a session (private when it is the user's own; a group's type is not in a session: null).
 */
export const legacyChatOf = (d: EventOf<"LegacyRecordImported">): { readonly chatId: number; readonly chatType: string | null } | undefined => {
  if (d.collection === "chats") {
    const r = d.record as { id?: unknown; type?: unknown } | null
    if (typeof r !== "object" || r === null || typeof r.id !== "number" || !Number.isSafeInteger(r.id)) return undefined
    return { chatId: r.id, chatType: typeof r.type === "string" && CHAT_TYPES.has(r.type) ? r.type : null }
  }
  if (d.collection === "sessions") {
    const { userId, chatId } = sessionParties(legacySessionTarget(d.key).key)
    if (chatId === null) return undefined
    return { chatId, chatType: chatId === userId ? "private" : null }
  }
  return undefined
}
