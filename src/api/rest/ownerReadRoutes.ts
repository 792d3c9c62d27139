import type { FastifyPluginAsync, FastifyRequest } from "fastify"
import type { Statement } from "../../db/sql.js"
import { openData } from "../../privacy/sealingLog.js"
import { redact } from "../../logging.js"
import type { ApiDeps } from "./apiContext.js"
import { botVisible, readForBot, readAsOwner } from "./apiContext.js"
import { ApiError } from "./apiErrors.js"
import { decodeCursor, pageOf } from "./cursor.pure.js"
import { Bot, BotIdParams, BotUser, Chat, errors, Message, PageQuery, pageOf as pageSchema } from "./schemas.js"

/*
 * What an owner reads: bots, their users and chats, messages, events. No query here names an
 * owner: each runs as the api role for the caller's owner (readAsOwner), and row-level security
 * keeps every other owner's rows out (test/api/restTenancy.int.test.ts proves it per route). A
 * route about one bot sends the bot's visibility check with its query, in the same round trip:
 * an empty page of a bot the owner cannot see is a 404, never an empty 200.
 */

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v))

const cursorKey = (cursor: string | undefined, arity: number) => {
  if (cursor === undefined) return null
  const key = decodeCursor(cursor, arity)
  if (key === null) throw new ApiError({ status: 400, code: "invalid_request", detail: "cursor: not a cursor this API gave" })
  return key
}

const botOf = (r: Record<string, unknown>) => ({
  botId: r["bot_id"],
  name: r["name"],
  kind: r["kind"],
  mode: r["mode"],
  state: r["state"],
  version: r["version"],
  nodeId: r["node_id"],
  lastError: r["last_error"],
  registeredAt: r["registered_at"],
  removedAt: r["removed_at"],
  lastEventAt: r["last_event_at"],
  lastActivityAt: r["last_activity_at"],
  inboxLagMs: r["inbox_lag_ms"],
  config: redact(r["config"])
})

const BOT_COLUMNS = `bot_id, name, kind, mode, state, version, node_id, last_error, registered_at::text, removed_at::text,
  last_event_at::text, last_activity_at::text, inbox_lag_ms, config`

const messageOf = (r: Record<string, unknown>) => ({
  version: r["version"],
  direction: r["direction"],
  chatId: num(r["chat_id"]),
  userId: num(r["user_id"]),
  messageId: num(r["message_id"]),
  text: r["text"],
  deliveryState: r["delivery_state"],
  at: r["at"]
})

const MESSAGE_COLUMNS = "version, direction, chat_id, user_id, message_id, text, delivery_state, at::text"

type Paged = { cursor?: string; limit: number }

/** A page of the caller's bots after `after` (the route's query; the bench runs it directly as its baseline). */
export const botsPage = (after: string | number | null, limit: number): Statement => ({
  name: "bf_api_bots",
  text: `SELECT ${BOT_COLUMNS} FROM bots WHERE ($1::text IS NULL OR bot_id > $1) ORDER BY bot_id LIMIT $2`,
  params: [after, limit]
})

/** A page of a bot's users after user id `after`, `like` matching a name (the route's query; the bench's baseline too). */
export const usersPage = (botId: string, after: string | number | null, like: string | null, limit: number): Statement => ({
  name: "bf_api_users",
  text: `SELECT user_id, first_name, last_name, username, language_code, first_seen_at::text, last_seen_at::text, blocked_at::text, messages_in
           FROM bot_users
          WHERE bot_id = $1 AND ($2::bigint IS NULL OR user_id > $2)
            AND ($3::text IS NULL OR first_name ILIKE $3 OR last_name ILIKE $3 OR username ILIKE $3)
          ORDER BY user_id LIMIT $4`,
  params: [botId, after, like, limit]
})

export const ownerReadRoutes = (deps: ApiDeps): FastifyPluginAsync => async (app) => {
  const read = { access: "read" as const }
  /** The rows of `query` (about the bot of the route), 404 if the caller cannot see that bot. */
  /** `query`'s rows for the bot the route names (by id or name), 404 unless the caller sees it; one round trip by id. */
  const ofVisibleBot = (req: FastifyRequest<{ Params: { botId: string } }>, query: (botId: string) => Statement) =>
    readForBot(deps, req, req.params.botId, async (botId) => {
      const [visible, result] = await readAsOwner(deps, req, [botVisible(botId), query(botId)])
      return visible!.rows.length === 0 ? null : result!.rows
    })

  app.get<{ Querystring: Paged }>("/bots", {
    config: read,
    schema: { tags: ["bots"], summary: "The caller's bots", querystring: { type: "object", properties: PageQuery }, response: { 200: pageSchema(Bot), ...errors } }
  }, async (req) => {
    const after = cursorKey(req.query.cursor, 1)
    const [bots] = await readAsOwner(deps, req, [botsPage(after?.[0] ?? null, req.query.limit + 1)])
    const rows = bots!.rows
    const page = pageOf(rows, req.query.limit, (r) => [String(r["bot_id"])])
    return { items: page.items.map(botOf), nextCursor: page.nextCursor }
  })

  app.get<{ Params: { botId: string } }>("/bots/:botId", {
    config: read,
    schema: { tags: ["bots"], summary: "One bot", params: BotIdParams, response: { 200: Bot, ...errors } }
  }, async (req) => {
    const row = await readForBot(deps, req, req.params.botId, async (botId) => {
      const [bot] = await readAsOwner(deps, req, [{ name: "bf_api_bot", text: `SELECT ${BOT_COLUMNS} FROM bots WHERE bot_id = $1`, params: [botId] }])
      return bot!.rows[0] ?? null
    })
    if (row === undefined) throw new ApiError({ status: 404, code: "not_found", detail: `bot ${req.params.botId} not found` })
    return botOf(row)
  })

  app.get<{ Params: { botId: string }; Querystring: Paged & { q?: string } }>("/bots/:botId/users", {
    config: read,
    schema: {
      tags: ["people"],
      summary: "A bot's users, by user id; q searches first/last name and username (case-insensitive, substring)",
      params: BotIdParams,
      querystring: { type: "object", properties: { ...PageQuery, q: { type: "string", minLength: 1, maxLength: 100 } } },
      response: { 200: pageSchema(BotUser), ...errors }
    }
  }, async (req) => {
    const after = cursorKey(req.query.cursor, 1)
    const like = req.query.q === undefined ? null : `%${req.query.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`
    const rows = await ofVisibleBot(req, (botId) => usersPage(botId, after?.[0] ?? null, like, req.query.limit + 1))
    const page = pageOf(rows, req.query.limit, (r) => [String(r["user_id"])])
    return {
      items: page.items.map((r) => ({
        userId: num(r["user_id"]),
        firstName: r["first_name"],
        lastName: r["last_name"],
        username: r["username"],
        languageCode: r["language_code"],
        firstSeenAt: r["first_seen_at"],
        lastSeenAt: r["last_seen_at"],
        blockedAt: r["blocked_at"],
        messagesIn: r["messages_in"]
      })),
      nextCursor: page.nextCursor
    }
  })

  app.get<{ Params: { botId: string }; Querystring: Paged }>("/bots/:botId/chats", {
    config: read,
    schema: {
      tags: ["people"],
      summary: "A bot's chats (conversations), most recent first",
      params: BotIdParams,
      querystring: { type: "object", properties: PageQuery },
      response: { 200: pageSchema(Chat), ...errors }
    }
  }, async (req) => {
    const after = cursorKey(req.query.cursor, 2)
    const rows = await ofVisibleBot(req, (botId) => ({
      name: "bf_api_chats",
      text: `SELECT chat_id, chat_type, first_message_at::text, last_message_at::text, messages_in, messages_out
               FROM chats
              WHERE bot_id = $1 AND ($2::timestamptz IS NULL OR (last_message_at, chat_id) < ($2::timestamptz, $3::bigint))
              ORDER BY last_message_at DESC, chat_id DESC LIMIT $4`,
      params: [botId, after?.[0] ?? null, after?.[1] ?? null, req.query.limit + 1]
    }))
    const page = pageOf(rows, req.query.limit, (r) => [String(r["last_message_at"]), String(r["chat_id"])])
    return {
      items: page.items.map((r) => ({
        chatId: num(r["chat_id"]),
        chatType: r["chat_type"],
        firstMessageAt: r["first_message_at"],
        lastMessageAt: r["last_message_at"],
        messagesIn: r["messages_in"],
        messagesOut: r["messages_out"]
      })),
      nextCursor: page.nextCursor
    }
  })

  const messages = (name: string, path: string, summary: string, where: string) =>
    app.get<{ Params: { botId: string; id: string }; Querystring: Paged }>(path, {
      config: read,
      schema: {
        tags: ["people"],
        summary,
        params: { type: "object", required: ["botId", "id"], properties: { ...BotIdParams.properties, id: { type: "string", pattern: "^-?[0-9]{1,19}$" } } },
        querystring: { type: "object", properties: PageQuery },
        response: { 200: pageSchema(Message), ...errors }
      }
    }, async (req) => {
      const before = cursorKey(req.query.cursor, 1)
      const rows = await ofVisibleBot(req, (botId) => ({
        name,
        text: `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE bot_id = $1 AND ${where} AND ($3::int IS NULL OR version < $3) ORDER BY version DESC LIMIT $4`,
        params: [botId, req.params.id, before?.[0] ?? null, req.query.limit + 1]
      }))
      const page = pageOf(rows, req.query.limit, (r) => [Number(r["version"])])
      return { items: page.items.map(messageOf), nextCursor: page.nextCursor }
    })
  // a private chat's id is its user's id: the bot's answers to a user are the messages out to that chat
  messages("bf_api_user_messages", "/bots/:botId/users/:id/messages", "A user's recent messages (to and from the bot), newest first", "(user_id = $2::bigint OR (direction = 'out' AND chat_id = $2::bigint))")
  messages("bf_api_chat_messages", "/bots/:botId/chats/:id/messages", "A conversation: the chat's messages, newest first", "chat_id = $2::bigint")

  app.get<{ Params: { botId: string }; Querystring: Paged }>("/bots/:botId/events", {
    config: read,
    schema: {
      tags: ["bots"],
      summary: "A bot's events from the archive, oldest first, redacted as `botfleet tail --json` redacts",
      params: BotIdParams,
      querystring: { type: "object", properties: PageQuery },
      response: { 200: pageSchema({ type: "object", additionalProperties: true }), ...errors }
    }
  }, async (req) => {
    const after = cursorKey(req.query.cursor, 1)
    const rows = await ofVisibleBot(req, (botId) => ({
      name: "bf_api_events",
      text: `SELECT event_id, bot_id, version, type, schema_version, occurred_at::text, correlation_id, causation_id, actor, data
               FROM events_archive WHERE bot_id = $1 AND version > $2 ORDER BY version LIMIT $3`,
      params: [botId, after?.[0] ?? 0, req.query.limit + 1]
    }))
    const page = pageOf(rows, req.query.limit, (r) => [Number(r["version"])])
    // the archive holds personal fields sealed: opened as every reader of the log sees them ([erased] once forgotten)
    const keyCache = deps.keyCache
    const opened = keyCache ? await Promise.all(page.items.map((r) => openData(keyCache, String(r["bot_id"]), r["data"]))) : page.items.map((r) => r["data"])
    return {
      items: page.items.map((r, i) =>
        redact({
          eventId: r["event_id"],
          botId: r["bot_id"],
          version: r["version"],
          type: r["type"],
          schemaVersion: r["schema_version"],
          occurredAt: r["occurred_at"],
          correlationId: r["correlation_id"],
          causationId: r["causation_id"],
          actor: r["actor"],
          data: opened[i]
        })
      ),
      nextCursor: page.nextCursor
    }
  })
}
