import type { FastifyPluginAsync, FastifyRequest } from "fastify"
import { Cause, Effect, Exit, Option, Redacted } from "effect"
import type { ApiDeps } from "./apiContext.js"
import { asOwner, ownerOf, principalOf, visibleBot } from "./apiContext.js"
import { toApiError } from "./apiErrors.js"
import { BotIdParams, Changed, errors } from "./schemas.js"

/*
 * What an owner changes (write tokens): each route first checks, under row-level security, that
 * the caller's owner can see the bot (404 otherwise, the same answer as for a bot that does not
 * exist), then runs the same function as the CLI command of that name (botWrites.ts). Bot tokens
 * arrive in the body, are wrapped in Redacted at once and never echoed or logged.
 */

/** Runs a write's effect; its failure becomes the matching typed API error. */
export const runWrite = async <A>(effect: Effect.Effect<A, unknown>): Promise<A> => {
  const exit = await Effect.runPromiseExit(effect)
  if (Exit.isSuccess(exit)) return exit.value
  const failure = Cause.failureOption(exit.cause)
  throw Option.isSome(failure) ? toApiError(failure.value) : toApiError(Cause.squash(exit.cause))
}

const actorOf = (req: FastifyRequest) => `owner:${ownerOf(req)}:api:${principalOf(req).tokenId}`

const ReasonBody = { type: "object", properties: { reason: { type: "string", minLength: 1, maxLength: 500 } }, additionalProperties: false } as const
const TokenBody = { type: "string", minLength: 10, maxLength: 200, description: "the bot's Telegram token (never returned, never logged)" } as const

export const botWriteRoutes = (deps: ApiDeps): FastifyPluginAsync => async (app) => {
  const write = { access: "write" as const }
  /** The bot the route names (by id or name) if it is the caller's: its id. */
  const mine = (req: FastifyRequest<{ Params: { botId: string } }>) => asOwner(deps, req, (tx) => visibleBot(tx, req.params.botId))

  app.post<{ Body: { botId: string; token: string; name?: string; kind?: string; mode?: "polling" | "webhook" } }>("/bots", {
    config: write,
    schema: {
      tags: ["bots"],
      summary: "Register a bot for the caller's owner (its token is checked with getMe, then stored sealed)",
      body: {
        type: "object",
        required: ["botId", "token"],
        additionalProperties: false,
        properties: {
          botId: { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$" },
          token: TokenBody,
          name: { type: "string", minLength: 1, maxLength: 100 },
          kind: { type: "string", minLength: 1, maxLength: 64, default: "builtin" },
          mode: { type: "string", enum: ["polling", "webhook"], default: "polling" }
        }
      },
      response: { 201: { type: "object", properties: { botId: { type: "string" }, username: { type: "string" }, telegramId: { type: "integer" } } }, ...errors }
    }
  }, async (req, reply) => {
    const b = req.body
    const added = await runWrite(
      deps.writes.add({ botId: b.botId, ownerId: ownerOf(req), kind: b.kind ?? "builtin", mode: b.mode ?? "polling", token: Redacted.make(b.token), ...(b.name ? { name: b.name } : {}) })
    )
    return reply.code(201).send(added)
  })

  app.patch<{ Params: { botId: string }; Body: Record<string, unknown> }>("/bots/:botId/config", {
    config: write,
    schema: {
      tags: ["bots"],
      summary: "Change a bot's configuration with a JSON merge patch (RFC 7386), checked against its kind's schema first",
      params: BotIdParams,
      body: { type: "object", additionalProperties: true, maxProperties: 100 },
      response: { 200: Changed, ...errors }
    }
  }, async (req) => {
    return runWrite(deps.writes.configure(await mine(req), req.body, actorOf(req)))
  })

  app.post<{ Params: { botId: string } }>("/bots/:botId/start", {
    config: write,
    schema: { tags: ["bots"], summary: "List a stopped bot in the fleet again: nodes start it", params: BotIdParams, response: { 200: { type: "object", properties: { botId: { type: "string" }, listed: { type: "boolean" } } }, ...errors } }
  }, async (req) => {
    return runWrite(deps.writes.start(await mine(req)))
  })

  for (const name of ["stop", "remove"] as const) {
    const handler = async (req: FastifyRequest<{ Params: { botId: string }; Body: { reason?: string } | undefined }>) => {
      const botId = await mine(req)
      const reason = req.body?.reason ?? `owner: ${name} over the API`
      return runWrite(deps.writes[name](botId, reason, actorOf(req)))
    }
    const schema = (summary: string) => ({ tags: ["bots"], summary, params: BotIdParams, body: ReasonBody, response: { 200: Changed, ...errors } })
    if (name === "stop") app.post("/bots/:botId/stop", { config: write, schema: schema("Stop a bot (BotStopped) and unlist it") }, handler)
    else app.delete("/bots/:botId", { config: write, schema: schema("Remove a bot for good (BotRemoved)") }, handler)
  }

  app.delete<{ Params: { botId: string; userId: string } }>("/bots/:botId/users/:userId", {
    config: write,
    schema: {
      tags: ["bots"],
      summary: "Forget a user of the bot (GDPR erasure, docs/privacy.md): destroy their key, purge their rows, record UserForgotten. Idempotent; answers once the second purge is done (a few seconds)",
      params: { type: "object", required: ["botId", "userId"], properties: { botId: BotIdParams.properties.botId, userId: { type: "string", minLength: 1, maxLength: 20 } } },
      response: {
        200: {
          type: "object",
          properties: {
            botId: { type: "string" },
            userId: { type: "integer" },
            alreadyForgotten: { type: "boolean" },
            purged: { type: "object", additionalProperties: { type: "integer" } },
            clearTextEvents: { type: "integer", description: "events of the user written before sealing: still readable, out of reach of the erasure" },
            recordedAt: { type: ["integer", "null"], description: "the fleet stream's version of the UserForgotten event (null: recorded by an earlier call)" }
          }
        },
        ...errors
      }
    }
  }, async (req) => {
    const botId = await mine(req)
    return runWrite(deps.writes.forgetUser(botId, req.params.userId, actorOf(req)))
  })

  app.post<{ Params: { botId: string }; Body: { token: string } }>("/bots/:botId/rotate-token", {
    config: write,
    schema: {
      tags: ["bots"],
      summary: "Give a bot a new token: checked with getMe to be the same Telegram bot, sealed, recorded (BotTokenRotated)",
      params: BotIdParams,
      body: { type: "object", required: ["token"], additionalProperties: false, properties: { token: TokenBody } },
      response: { 200: Changed, ...errors }
    }
  }, async (req) => {
    return runWrite(deps.writes.rotateToken(await mine(req), Redacted.make(req.body.token), actorOf(req)))
  })
}
