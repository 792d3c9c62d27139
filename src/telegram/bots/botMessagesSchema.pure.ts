import { Schema } from "effect"
import { MESSAGE_NAME } from "../../actors/decider/botMessage.js"

/**
 * The built-in kind's declared bot messages (config `messages`): per message name, the payload's
 * fields and their types, from which the effect/Schema the bot checks incoming payloads with is
 * built (`payloadSchemaOf`), and optionally a text it sends to a chat the payload names:
 *
 *   "messages": { "order.shipped": { "fields": { "userId": "integer", "orderId": "string", "note": "string?" },
 *                                     "notify": { "chat": "userId", "text": "Your order {orderId} is on its way" } } }
 *
 * A type ending in `?` is optional; a payload with a field not declared is refused.
 */

const FIELD = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/
export const FIELD_TYPES = ["string", "number", "integer", "boolean", "string?", "number?", "integer?", "boolean?"] as const
export type FieldType = (typeof FIELD_TYPES)[number]

const BASE: Readonly<Record<string, Schema.Schema.AnyNoContext>> = { string: Schema.String, number: Schema.Number, integer: Schema.Int, boolean: Schema.Boolean }

export const MessageDeclaration = Schema.Struct({
  fields: Schema.Record({ key: Schema.String, value: Schema.Literal(...FIELD_TYPES) }).pipe(
    Schema.filter((fields) => Object.keys(fields).flatMap((k) => (FIELD.test(k) ? [] : [{ path: [k], message: "a field name is a letter or _ then up to 63 letters, digits or _" }])))
  ),
  /** Sends `text` ({field} filled from the payload) to the chat whose id is the payload's field `chat`. */
  notify: Schema.optionalWith(
    Schema.Struct({
      chat: Schema.String,
      text: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(4096))
    }),
    { exact: true }
  )
}).pipe(
  Schema.filter((d) =>
    d.notify === undefined || d.fields[d.notify.chat] === "integer" || { path: ["notify", "chat"], message: `must name a field of type integer (the chat id), declared in fields` }
  )
)
export type MessageDeclaration = typeof MessageDeclaration.Type

const Messages = Schema.Record({ key: Schema.String, value: MessageDeclaration }).pipe(
  Schema.filter((r) => Object.keys(r).flatMap((k) => (MESSAGE_NAME.test(k) ? [] : [{ path: [k], message: "a message name is 1 to 64 letters, digits, _, . or -, starting with a letter" }])))
)

export const messagesConfigField = {
  /** Typed messages this bot takes from its owner's other bots, by name (botMessage.ts). */
  messages: Schema.optionalWith(Messages, { exact: true })
}

/** The effect/Schema of a declared message's payload: a struct of its fields. */
export const payloadSchemaOf = (d: MessageDeclaration): Schema.Schema.AnyNoContext =>
  Schema.Struct(
    Object.fromEntries(
      Object.entries(d.fields).map(([k, t]) => [k, t.endsWith("?") ? Schema.optional(BASE[t.slice(0, -1)]!) : BASE[t]!])
    )
  ) as unknown as Schema.Schema.AnyNoContext

/** The declared messages of a built-in config (whatever it holds: an invalid one declares none). */
export const declaredMessagesOf = (config: unknown): ReadonlyMap<string, MessageDeclaration> => {
  const raw = (config as { messages?: unknown } | null)?.messages
  if (raw === undefined) return new Map()
  const decoded = Schema.decodeUnknownEither(Messages)(raw)
  if (decoded._tag === "Left") return new Map()
  return new Map(Object.entries(decoded.right))
}

/** The notify text of a message: `{field}` filled from the payload (unknown fields left as written). */
export const notifyText = (template: string, payload: Readonly<Record<string, unknown>>): string =>
  template.replace(/\{([A-Za-z_][A-Za-z0-9_]{0,63})\}/g, (whole, k: string) => (payload[k] === undefined ? whole : String(payload[k])))
