import type { FastifyPluginAsync } from "fastify"
import { tagsSessionKey } from "../../actors/decider/userTags.js"
import { requestTag } from "../../broadcast/userTagRequests.js"
import type { ApiDeps } from "./apiContext.js"
import { asOwner, visibleBot } from "./apiContext.js"
import { runWrite } from "./botWriteRoutes.js"
import { errors } from "./schemas.js"

/*
 * Tags on a bot's users (docs/broadcasts.md "Tags"), which broadcast segments select (tag=vip).
 * Setting one puts a tag request into the bot's inbox (actors/decider/userTags.ts): the bot records
 * it on its stream when it takes it, so the answer is 202. Reading shows what the projection holds.
 */

const UserParams = {
  type: "object",
  required: ["botId", "userId"],
  properties: { botId: { type: "string", minLength: 1, maxLength: 128 }, userId: { type: "integer", minimum: 1, maximum: Number.MAX_SAFE_INTEGER } }
} as const

const TagParams = { ...UserParams, required: [...UserParams.required, "tag"], properties: { ...UserParams.properties, tag: { type: "string", minLength: 1, maxLength: 32 } } } as const

const Requested = {
  type: "object",
  properties: { botId: { type: "string" }, userId: { type: "integer" }, tag: { type: "string" }, tagged: { type: "boolean" }, queued: { type: "boolean" } }
} as const

export const userTagRoutes = (deps: ApiDeps): FastifyPluginAsync => async (app) => {
  const write = { access: "write" as const }

  app.get<{ Params: { botId: string; userId: number } }>("/bots/:botId/users/:userId/tags", {
    config: { access: "read" },
    schema: {
      tags: ["people"],
      summary: "A user's tags, as the projection holds them",
      params: UserParams,
      response: { 200: { type: "object", properties: { userId: { type: "integer" }, tags: { type: "array", items: { type: "string" } } } }, ...errors }
    }
  }, async (req) => {
    const rows = await asOwner(deps, req, async (tx) => {
      await visibleBot(tx, req.params.botId)
      return (await tx.query<{ tag: string }>("SELECT jsonb_object_keys(data) AS tag FROM bot_sessions WHERE bot_id = $1 AND session_key = $2 ORDER BY 1", [req.params.botId, tagsSessionKey(req.params.userId)])).rows
    })
    return { userId: req.params.userId, tags: rows.map((r) => r.tag) }
  })

  app.post<{ Params: { botId: string; userId: number }; Body: { tag: string } }>("/bots/:botId/users/:userId/tags", {
    config: write,
    schema: {
      tags: ["people"],
      summary: "Tag a user (202: the bot records it when it takes the request from its inbox)",
      params: UserParams,
      body: { type: "object", required: ["tag"], additionalProperties: false, properties: { tag: { type: "string", minLength: 1, maxLength: 32 } } },
      response: { 202: Requested, ...errors }
    }
  }, async (req, reply) => {
    await asOwner(deps, req, (tx) => visibleBot(tx, req.params.botId))
    return reply.code(202).send(await runWrite(requestTag(deps.inbox, { botId: req.params.botId, userId: req.params.userId, tag: req.body.tag, on: true })))
  })

  app.delete<{ Params: { botId: string; userId: number; tag: string } }>("/bots/:botId/users/:userId/tags/:tag", {
    config: write,
    schema: { tags: ["people"], summary: "Remove a tag from a user (202, as tagging)", params: TagParams, response: { 202: Requested, ...errors } }
  }, async (req, reply) => {
    await asOwner(deps, req, (tx) => visibleBot(tx, req.params.botId))
    return reply.code(202).send(await runWrite(requestTag(deps.inbox, { botId: req.params.botId, userId: req.params.userId, tag: req.params.tag, on: false })))
  })
}
