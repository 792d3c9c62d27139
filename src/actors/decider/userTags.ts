import { handoffUpdateId } from "./handoff.js"

/**
 * Tags on a bot's users (pure): `vip`, `beta`... that broadcast segments select (`tag=vip`).
 *
 * A user's tags are the bot's session `tags:<userId>` (`{ "vip": true }`), so they are facts on
 * the bot's stream (`SessionChanged`), replayed and projected into `bot_sessions` like any session.
 * Who records them:
 * - the bot itself, from its code (`ctx.fleet.tag(...)`: a `SessionChanged` with the update's
 *   other events) or its built-in config (a button's `tag`);
 * - the owner (`botfleet users tag`, `POST /api/v1/bots/:bot/users/:user/tags`): a tag request is
 *   put into the bot's inbox and the bot records it when it takes it, like any update, so the
 *   bot's single writer stays the only one appending to its stream.
 * Setting a tag twice changes nothing, so a request put in twice needs no dedupe.
 */

/** The update field that carries an owner's tag request into the bot's inbox. */
export const TAG_FIELD = "botfleet_tag"

/** A tag: lower-case letters, digits, `_` and `-`, 1 to 32 (the same as segment.pure.ts). */
export const TAG_PATTERN = /^[a-z0-9][a-z0-9_-]{0,31}$/

export interface TagRequest {
  /** Unique per request (its update_id is derived from it). */
  readonly requestId: string
  readonly userId: number
  readonly tag: string
  /** false: remove the tag. */
  readonly on: boolean
}

export const tagsSessionKey = (userId: number): string => `tags:${userId}`

/** Why a tag request is refused, or null when it is good. */
export const tagProblem = (userId: unknown, tag: unknown): string | null => {
  if (typeof userId !== "number" || !Number.isSafeInteger(userId) || userId <= 0) return "the user id must be a positive integer (a Telegram user id)"
  if (typeof tag !== "string" || !TAG_PATTERN.test(tag)) return `tag ${JSON.stringify(tag)}: 1 to 32 lower-case letters, digits, _ or - (starting with a letter or digit)`
  return null
}

/** The merge patch that sets (or removes) a tag in the user's tags session. */
export const tagPatch = (tag: string, on: boolean): Readonly<Record<string, true | null>> => ({ [tag]: on ? true : null })

export const tagUpdate = (r: TagRequest): { readonly update_id: number; readonly [TAG_FIELD]: TagRequest } => ({
  update_id: handoffUpdateId(`tag/${r.requestId}`),
  [TAG_FIELD]: r
})

/** The tag request an inbox entry carries, or null (not one, or a malformed one). */
export const tagRequestOf = (update: unknown): TagRequest | null => {
  const r = (update as Record<string, unknown> | null)?.[TAG_FIELD] as Record<string, unknown> | undefined
  if (typeof r !== "object" || r === null) return null
  if (typeof r["requestId"] !== "string" || typeof r["on"] !== "boolean" || tagProblem(r["userId"], r["tag"]) !== null) return null
  return { requestId: r["requestId"], userId: r["userId"] as number, tag: r["tag"] as string, on: r["on"] }
}
