import { handoffUpdateId } from "./handoff.js"

/**
 * Typed bot-to-bot messages (pure): besides handing a user over (handoff.ts), a bot can send
 * another bot of the same owner a message: a name and a JSON payload, which the target checks
 * against the effect/Schema it declares for that name.
 *
 * The path is the handoff's: the sender's call of the method `botfleet.message` is recorded on
 * its stream (intent, then outcome), the call executor checks the owners and puts the message
 * into the target's inbox (handoffDelivery.ts), and the target records taking it on its stream
 * (`UpdateReceived` plus the session `message:<id>`). Both streams name the same message id,
 * `<source bot>/<call id>`: the correlation id.
 *
 * Exactly once across a crash between the two appends: delivery is idempotent (the target takes a
 * message id once, remembered in its session), so an intent left without outcome is delivered
 * again when the sender's update is decided again, and the target drops the second copy.
 */

/** The recorded-call method of a bot message (never sent to Telegram: the call executor delivers it). */
export const BOT_MESSAGE_METHOD = "botfleet.message"

/** The update field that carries a bot message into the target's inbox (no Telegram update has it). */
export const BOT_MESSAGE_FIELD = "botfleet_message"

/** A message name: what the target declares a schema under. */
export const MESSAGE_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/

/** Largest payload, as JSON text. */
export const MAX_PAYLOAD_CHARS = 16_384

/** What the sender asks for (the call's params). */
export interface BotMessageRequest {
  readonly to: string
  readonly name: string
  readonly payload: unknown
}

/** What the target's inbox receives, inside `{ update_id, botfleet_message: ... }`. */
export interface BotMessage extends BotMessageRequest {
  readonly messageId: string
  readonly from: string
  readonly fromOwner: string
}

/** The message id of a sender's call: stable across re-sends, and the correlation id on both streams. */
export const botMessageIdOf = (fromBot: string, callId: string): string => `${fromBot}/${callId}`

/** The session key under which a target remembers a message it took (dedupe by message id). */
export const botMessageSessionKey = (messageId: string): string => `message:${messageId}`

/** Checks a message call's params: the request, or why it is refused (nothing is delivered then). */
export const parseBotMessageRequest = (params: unknown, fromBot: string): BotMessageRequest | string => {
  const p = (typeof params === "object" && params !== null ? params : {}) as Record<string, unknown>
  const to = p["to"]
  if (typeof to !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(to)) return "to: the target bot's id is missing or not a bot id"
  if (to === fromBot) return "to: a bot cannot send a message to itself"
  if (typeof p["name"] !== "string" || !MESSAGE_NAME.test(p["name"])) return "name: 1 to 64 letters, digits, _, . or -, starting with a letter"
  if (!("payload" in p) || p["payload"] === undefined) return "payload: missing (use null for none)"
  let json: string
  try {
    json = JSON.stringify(p["payload"])
  } catch {
    return "payload: not JSON"
  }
  if (json.length > MAX_PAYLOAD_CHARS) return `payload: more than ${MAX_PAYLOAD_CHARS} characters of JSON`
  return { to, name: p["name"], payload: JSON.parse(json) as unknown }
}

/** The bot message an inbox entry carries, or null for anything else. */
export const botMessageOf = (update: unknown): BotMessage | null => {
  const m = (update as Record<string, unknown> | null)?.[BOT_MESSAGE_FIELD] as Record<string, unknown> | undefined
  if (typeof m !== "object" || m === null) return null
  if (typeof m["messageId"] !== "string" || typeof m["from"] !== "string" || typeof m["fromOwner"] !== "string") return null
  const req = parseBotMessageRequest(m, "")
  return typeof req === "string" ? null : { ...req, messageId: m["messageId"], from: m["from"], fromOwner: m["fromOwner"] }
}

/** The inbox entry delivering a message; its update_id is derived from the message id, so a re-delivery carries the same. */
export const botMessageUpdate = (m: BotMessage): { readonly update_id: number; readonly [BOT_MESSAGE_FIELD]: BotMessage } => ({
  update_id: handoffUpdateId(`message/${m.messageId}`),
  [BOT_MESSAGE_FIELD]: m
})
