/*
 * JSON Schemas of the API: fastify validates requests with them and serializes answers with
 * them, and @fastify/swagger turns the very same objects into /openapi.json, so the document
 * cannot drift from what the server does.
 */

export const ErrorBody = {
  $id: "Error",
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: {
        code: { type: "string", description: "stable: unauthorized, forbidden, owner_token_required, not_found, invalid_request, config_invalid, bot_exists, refused, bot_busy, cannot_retry, bot_token_invalid, rate_limited, unavailable, node_timeout, internal" },
        message: { type: "string" },
        problems: { type: "array", items: { type: "object", additionalProperties: true } }
      }
    }
  }
} as const

const err = { $ref: "Error#" } as const
/** The error answers every protected route may give. */
export const errors = { 400: err, 401: err, 403: err, 404: err, 409: err, 422: err, 429: err, 500: err, 503: err } as const

export const BotIdParams = {
  type: "object",
  required: ["botId"],
  properties: { botId: { type: "string", minLength: 1, maxLength: 128 } }
} as const

export const PageQuery = {
  cursor: { type: "string", maxLength: 400, description: "nextCursor of the previous page" },
  limit: { type: "integer", minimum: 1, maximum: 500, default: 50 }
} as const

/** A page of `item`s with the cursor of the next one (null: last page). */
export const pageOf = (item: object) =>
  ({
    type: "object",
    required: ["items", "nextCursor"],
    properties: { items: { type: "array", items: item }, nextCursor: { type: ["string", "null"] } }
  }) as const

const nullable = (type: string, format?: string) => ({ type: [type, "null"], ...(format ? { format } : {}) })

export const Bot = {
  type: "object",
  properties: {
    botId: { type: "string" },
    name: { type: "string" },
    kind: { type: "string" },
    mode: { type: "string" },
    state: { type: "string" },
    version: { type: "integer" },
    nodeId: nullable("string"),
    lastError: nullable("string"),
    registeredAt: { type: "string" },
    removedAt: nullable("string"),
    lastEventAt: { type: "string" },
    lastActivityAt: nullable("string"),
    inboxLagMs: nullable("integer"),
    config: { type: "object", additionalProperties: true }
  }
} as const

export const BotUser = {
  type: "object",
  properties: {
    userId: { type: "integer" },
    firstName: nullable("string"),
    lastName: nullable("string"),
    username: nullable("string"),
    languageCode: nullable("string"),
    firstSeenAt: { type: "string" },
    lastSeenAt: { type: "string" },
    blockedAt: nullable("string"),
    messagesIn: { type: "integer" }
  }
} as const

export const Chat = {
  type: "object",
  properties: {
    chatId: { type: "integer" },
    chatType: { type: "string" },
    firstMessageAt: { type: "string" },
    lastMessageAt: { type: "string" },
    messagesIn: { type: "integer" },
    messagesOut: { type: "integer" }
  }
} as const

export const Message = {
  type: "object",
  properties: {
    version: { type: "integer" },
    direction: { type: "string", enum: ["in", "out"] },
    chatId: { type: "integer" },
    userId: nullable("integer"),
    messageId: nullable("integer"),
    text: nullable("string"),
    deliveryState: { type: "string" },
    at: { type: "string" }
  }
} as const

export const Broadcast = {
  type: "object",
  properties: {
    broadcastId: { type: "integer" },
    botId: { type: "string" },
    text: { type: "string" },
    segment: { type: "string" },
    state: { type: "string", enum: ["running", "paused", "cancelled", "done"] },
    notBefore: { type: "string", format: "date-time" },
    progress: {
      type: "object",
      description: "sent, failed and blocked (403 while sending) count handled messages; skippedBlocked: left out at creation; pending = total - handled",
      properties: {
        total: { type: "integer" },
        queued: { type: "integer" },
        sent: { type: "integer" },
        failed: { type: "integer" },
        blocked: { type: "integer" },
        skippedBlocked: { type: "integer" },
        pending: { type: "integer" }
      }
    }
  }
} as const

export const Changed = {
  type: "object",
  properties: { botId: { type: "string" }, events: { type: "array", items: { type: "string" } }, version: { type: "integer" } }
} as const
