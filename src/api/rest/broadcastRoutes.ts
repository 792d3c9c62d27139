import type { FastifyPluginAsync, FastifyRequest } from "fastify"
import { createBroadcastIn, controlBroadcastIn, getBroadcastIn, pageBroadcastsIn } from "../../broadcast/broadcastStore.js"
import type { BroadcastRow } from "../../broadcast/broadcastStore.js"
import type { ApiDeps } from "./apiContext.js"
import { asOwner, ownerOf, visibleBot } from "./apiContext.js"
import { ApiError } from "./apiErrors.js"
import { decodeCursor, pageOf } from "./cursor.pure.js"
import { BotIdParams, Broadcast, errors, PageQuery, pageOf as pageSchema } from "./schemas.js"

/*
 * An owner's broadcasts (docs/api.md "Broadcasts"): the same store functions as `botfleet
 * broadcast …`, each run inside the request's api-role transaction (asOwner), so row-level
 * security on `broadcasts` (sql/0135) decides which broadcasts and which users a caller reaches:
 * another owner's broadcast is 404, as one that does not exist. The node's runner sends them.
 */

const BroadcastIdParams = {
  type: "object",
  required: ["broadcastId"],
  properties: { broadcastId: { type: "integer", minimum: 1, maximum: 999_999_999_999 } }
} as const

/** The answer's shape: the row with its progress grouped as a client reads it. */
export const broadcastJson = (r: BroadcastRow) => ({
  broadcastId: r.broadcastId,
  botId: r.botId,
  text: r.text,
  segment: r.segment,
  state: r.state,
  notBefore: r.notBefore,
  progress: { total: r.total, queued: r.queued, sent: r.sent, failed: r.failed, blocked: r.blocked, skippedBlocked: r.skippedBlocked, pending: r.pending }
})

const afterOf = (cursor: string | undefined): number | null => {
  if (cursor === undefined) return null
  const key = decodeCursor(cursor, 1)
  if (key === null || typeof key[0] !== "number") throw new ApiError({ status: 400, code: "invalid_request", detail: "cursor: not a cursor this API gave" })
  return key[0]
}

export const broadcastRoutes = (deps: ApiDeps): FastifyPluginAsync => async (app) => {
  const read = { access: "read" as const }
  const write = { access: "write" as const }

  app.post<{ Params: { botId: string }; Body: { segment: string; text: string; at?: string } }>("/bots/:botId/broadcasts", {
    config: write,
    schema: {
      tags: ["broadcasts"],
      summary: "Broadcast a message to a segment of the bot's users (all, language=de, seen<7d, messages>=3, tag=vip, legacy.<field>=<value>), sent by the fleet within Telegram's limits",
      params: BotIdParams,
      body: {
        type: "object",
        required: ["segment", "text"],
        additionalProperties: false,
        properties: {
          segment: { type: "string", minLength: 1, maxLength: 1000, description: "comma-separated terms, all of which must hold (docs/broadcasts.md)" },
          text: { type: "string", minLength: 1, maxLength: 4096 },
          at: { type: "string", format: "date-time", description: "not before this time (default: now)" }
        }
      },
      response: { 201: Broadcast, ...errors }
    }
  }, async (req, reply) => {
    const at = req.body.at === undefined ? new Date() : new Date(req.body.at)
    const row = await asOwner(deps, req, async (tx) => {
      await visibleBot(tx, req.params.botId)
      return createBroadcastIn(tx, { botId: req.params.botId, ownerId: ownerOf(req), text: req.body.text, segment: req.body.segment, notBefore: at })
    })
    return reply.code(201).send(broadcastJson(row))
  })

  app.get<{ Params: { botId: string }; Querystring: { cursor?: string; limit: number } }>("/bots/:botId/broadcasts", {
    config: read,
    schema: {
      tags: ["broadcasts"],
      summary: "The bot's broadcasts with their progress, oldest first",
      params: BotIdParams,
      querystring: { type: "object", properties: PageQuery },
      response: { 200: pageSchema(Broadcast), ...errors }
    }
  }, async (req) => {
    const after = afterOf(req.query.cursor)
    const rows = await asOwner(deps, req, async (tx) => {
      await visibleBot(tx, req.params.botId)
      return pageBroadcastsIn(tx, { botId: req.params.botId, after, limit: req.query.limit + 1 })
    })
    const page = pageOf(rows, req.query.limit, (r) => [r.broadcastId])
    return { items: page.items.map(broadcastJson), nextCursor: page.nextCursor }
  })

  app.get<{ Params: { broadcastId: number } }>("/broadcasts/:broadcastId", {
    config: read,
    schema: { tags: ["broadcasts"], summary: "One broadcast with its progress (sent, failed, blocked, pending)", params: BroadcastIdParams, response: { 200: Broadcast, ...errors } }
  }, async (req) => broadcastJson(await asOwner(deps, req, (tx) => getBroadcastIn(tx, req.params.broadcastId))))

  for (const action of ["pause", "resume", "cancel"] as const) {
    app.post(`/broadcasts/:broadcastId/${action}`, {
      config: write,
      schema: {
        tags: ["broadcasts"],
        summary: `${action[0]!.toUpperCase()}${action.slice(1)} a broadcast (409 refused from a state that does not allow it); takes effect within the messages already waiting in the bot's inbox`,
        params: BroadcastIdParams,
        response: { 200: Broadcast, ...errors }
      }
    }, async (req: FastifyRequest<{ Params: { broadcastId: number } }>) =>
      broadcastJson(await asOwner(deps, req, (tx) => controlBroadcastIn(tx, req.params.broadcastId, action))))
  }
}
