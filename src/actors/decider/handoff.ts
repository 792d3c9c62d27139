/**
 * Bot-to-bot handoff, the parts the decider and bot code share (pure).
 *
 * A bot hands a user (and the conversation's context) to another bot of the same owner with a
 * recorded call of the method `botfleet.handoff`: the intent is recorded on the source's stream,
 * the call executor checks the owners and puts a handoff update into the target's inbox, and the
 * result is recorded on the source's stream. The target handles that update like any other
 * (recorded as `UpdateReceived` on its stream, cursor advanced in the same append) and greets the
 * user with the context. Both streams name the same `handoffId` (`<source bot>/<call id>`).
 *
 * Exactly once across a crash between the two appends: unlike a Telegram call, delivering a
 * handoff is idempotent (the target drops a handoff id it has already taken), so an intent a crash
 * left without outcome is sent again when its update is decided again, instead of being closed
 * as unknown; the target's copy of a second delivery is dropped by its handoff id.
 */

/** The recorded-call method of a handoff (never sent to Telegram: the call executor delivers it). */
export const HANDOFF_METHOD = "botfleet.handoff"

/** The update field that carries a handoff into the target's inbox (no Telegram update has it). */
export const HANDOFF_FIELD = "botfleet_handoff"

/** What the source asks for (the call's params). */
export interface HandoffRequest {
  /** The target bot's id in the fleet. */
  readonly to: string
  readonly userId: number
  readonly chatId: number
  readonly firstName?: string
  readonly languageCode?: string
  /** What the target greets the user with (what the user wanted, the conversation so far). */
  readonly context: string
}

/** What the target's inbox receives, inside `{ update_id, botfleet_handoff: ... }`. */
export interface Handoff extends HandoffRequest {
  readonly handoffId: string
  readonly from: string
  readonly fromOwner: string
}

/**
 * Methods whose delivery the fleet makes idempotent, so an intent left without outcome is sent
 * again: handoffs and bot messages (botMessage.ts's BOT_MESSAGE_METHOD, spelled out here because
 * botMessage.ts builds on this file).
 */
export const isIdempotentMethod = (method: string): boolean => method === HANDOFF_METHOD || method === "botfleet.message"

/** The handoff id of a source's call: stable across re-sends. */
export const handoffIdOf = (fromBot: string, callId: string): string => `${fromBot}/${callId}`

/** The session key under which a target remembers a handoff it took (dedupe by handoff id). */
export const handoffSessionKey = (handoffId: string): string => `handoff:${handoffId}`

/**
 * The update_id of a handoff in the target's inbox: negative (Telegram's are positive), derived
 * from the handoff id (FNV-1a, 48 bits) so a re-delivery carries the same id.
 */
export const handoffUpdateId = (handoffId: string): number => {
  let h = 0xcbf29ce484222325n
  for (const c of new TextEncoder().encode(handoffId)) h = BigInt.asUintN(64, (h ^ BigInt(c)) * 0x100000001b3n)
  return -(Number(h & 0xffffffffffffn) + 1)
}

const MAX_CONTEXT = 2048

/** Checks a handoff call's params: the request, or why it is refused (nothing is delivered then). */
export const parseHandoffRequest = (params: unknown, fromBot: string): HandoffRequest | string => {
  const p = (typeof params === "object" && params !== null ? params : {}) as Record<string, unknown>
  const to = p["to"]
  if (typeof to !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(to)) return "to: the target bot's id is missing or not a bot id"
  if (to === fromBot) return "to: a bot cannot hand a user to itself"
  for (const k of ["userId", "chatId"] as const) if (typeof p[k] !== "number" || !Number.isSafeInteger(p[k])) return `${k}: must be an integer`
  if (typeof p["context"] !== "string" || p["context"].length > MAX_CONTEXT) return `context: must be a text of at most ${MAX_CONTEXT} characters`
  return {
    to,
    userId: p["userId"] as number,
    chatId: p["chatId"] as number,
    context: p["context"],
    ...(typeof p["firstName"] === "string" ? { firstName: p["firstName"] } : {}),
    ...(typeof p["languageCode"] === "string" ? { languageCode: p["languageCode"] } : {})
  }
}

/** The handoff an inbox entry carries, or null for a Telegram update. */
export const handoffOf = (update: unknown): Handoff | null => {
  const h = (update as Record<string, unknown> | null)?.[HANDOFF_FIELD] as Record<string, unknown> | undefined
  if (typeof h !== "object" || h === null) return null
  if (typeof h["handoffId"] !== "string" || typeof h["from"] !== "string" || typeof h["fromOwner"] !== "string") return null
  const req = parseHandoffRequest(h, "")
  return typeof req === "string" ? null : { ...req, handoffId: h["handoffId"], from: h["from"], fromOwner: h["fromOwner"] }
}

/** The inbox entry delivering a handoff. */
export const handoffUpdate = (h: Handoff): { readonly update_id: number; readonly [HANDOFF_FIELD]: Handoff } => ({
  update_id: handoffUpdateId(h.handoffId),
  [HANDOFF_FIELD]: h
})

/** The default text a target greets a handed-over user with; `{name}`, `{from}` and `{context}` are filled in. */
export const DEFAULT_HANDOFF_GREETING = "Hello {name}! {from} passed you on to me: {context}"

export const handoffGreeting = (template: string, h: Handoff): string =>
  template.replaceAll("{name}", h.firstName || "there").replaceAll("{from}", h.from).replaceAll("{context}", h.context)
