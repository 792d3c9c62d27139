import rateLimit from "@fastify/rate-limit"
import swagger from "@fastify/swagger"
import swaggerUi from "@fastify/swagger-ui"
import type { FastifyError, FastifyPluginAsync, FastifyRequest } from "fastify"
import { Effect, Either } from "effect"
import { bearerOf, scopeAllows } from "../auth/apiToken.pure.js"
import type { Authenticator, Principal } from "../auth/apiTokens.js"
import type { ApiDeps } from "./apiContext.js"
import { ApiError, errorBody, toApiError } from "./apiErrors.js"
import { analyticsRoutes } from "./analyticsRoutes.js"
import { botWriteRoutes } from "./botWriteRoutes.js"
import { broadcastRoutes } from "./broadcastRoutes.js"
import { userTagRoutes } from "./userTagRoutes.js"
import { opsRoutes } from "./opsRoutes.js"
import { ownerReadRoutes } from "./ownerReadRoutes.js"
import { ErrorBody } from "./schemas.js"

/** Who may call a route: owner tokens (read or write scope), or admin tokens. Unset: public. */
export type Access = "read" | "write" | "admin"

declare module "fastify" {
  interface FastifyContextConfig {
    access?: Access
  }
}

export const API_PREFIX = "/api/v1"

const REFUSED: Record<string, string> = {
  missing: "an API token is required: Authorization: Bearer <token> (botfleet tokens create)",
  malformed: "the API token is not valid",
  unknown: "the API token is not valid",
  revoked: "the API token was revoked",
  expired: "the API token has expired"
}

/**
 * The REST API (docs/api.md) as a plugin of the node's HTTP server: `/api/v1/...` behind bearer
 * tokens, `/openapi.json` (OpenAPI 3.1, from the routes' own schemas) and `/docs`. Order of a
 * request: the token is checked (401), its scope against the route's `access` (403), then the
 * per-token rate limit (429), then the route's schema (400), then the handler.
 */
/** The route groups under /api/v1 (each gets the token check, the rate limit and the error shape). */
export const API_ROUTES: ReadonlyArray<(deps: ApiDeps) => FastifyPluginAsync> = [ownerReadRoutes, analyticsRoutes, botWriteRoutes, broadcastRoutes, userTagRoutes, opsRoutes]

export const restApi = (
  deps: ApiDeps & { readonly authenticate: Authenticator },
  routes: ReadonlyArray<(deps: ApiDeps) => FastifyPluginAsync> = API_ROUTES
): FastifyPluginAsync => async (app) => {
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: { title: "botfleet REST API", version: "1", description: "Owners' bots, their users, chats, messages and numbers; ops' fleet status. See docs/api.md." },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "botfleet tokens create --owner <id>" } } },
      security: [{ bearer: [] }]
    }
  })
  app.addSchema(ErrorBody)
  await app.register(swaggerUi, { routePrefix: "/docs" })
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger())

  // the last-used times still waiting for their background write
  app.addHook("onClose", async () => deps.authenticate.flush())
  app.decorateRequest("principal", undefined)
  app.addHook("onRequest", async (req) => {
    const access = req.routeOptions.config.access
    if (access === undefined) return
    const checked = await Effect.runPromise(Effect.either(deps.authenticate(bearerOf(req.headers.authorization))))
    if (Either.isLeft(checked)) throw toApiError(checked.left)
    const verdict = checked.right
    if (Either.isLeft(verdict)) throw new ApiError({ status: 401, code: "unauthorized", detail: REFUSED[verdict.left]! })
    const p: Principal = verdict.right
    ;(req as FastifyRequest & { principal?: Principal }).principal = p
    if (access === "admin") {
      if (p.scope !== "admin") throw new ApiError({ status: 403, code: "forbidden", detail: "this route is for ops: it needs an admin token" })
      return
    }
    if (p.ownerId === null) throw new ApiError({ status: 403, code: "owner_token_required", detail: "this route acts for an owner: use an owner's token" })
    if (!scopeAllows(p.scope, access)) throw new ApiError({ status: 403, code: "forbidden", detail: `this route changes things: it needs a token of scope write (this one is ${p.scope})` })
  })

  if (deps.rateLimitPerMinute > 0) {
    await app.register(rateLimit, {
      max: deps.rateLimitPerMinute,
      timeWindow: 60_000,
      // after the token check: limits count per token, and unauthenticated noise never uses up an owner's budget
      hook: "preHandler",
      keyGenerator: (req) => (req as FastifyRequest & { principal?: Principal }).principal?.tokenId ?? `ip:${req.ip}`,
      allowList: (req) => req.routeOptions.config.access === undefined,
      // thrown by the plugin: the error handler below answers it in the API's error shape
      errorResponseBuilder: (_req, ctx) =>
        Object.assign(new ApiError({ status: 429, code: "rate_limited", detail: `more than ${ctx.max} requests per minute with this token: retry in ${Math.ceil(ctx.ttl / 1000)} s` }), { statusCode: 429 })
    })
  }

  app.setErrorHandler(async (error: FastifyError | ApiError, req, reply) => {
    let e: ApiError
    if (error instanceof ApiError) e = error
    else if ((error as FastifyError).validation) e = new ApiError({ status: 400, code: "invalid_request", detail: error.message })
    else if ((error as { statusCode?: number }).statusCode === 429) e = new ApiError({ status: 429, code: "rate_limited", detail: error.message })
    else if (typeof (error as FastifyError).statusCode === "number" && (error as FastifyError).statusCode! < 500) {
      e = new ApiError({ status: (error as FastifyError).statusCode!, code: "invalid_request", detail: error.message })
    } else e = toApiError(error)
    if (e.status >= 500) deps.logRequest?.({ message: "API request failed", route: req.routeOptions.url ?? "unmatched", error: e.code, cause: String((error as Error).message ?? error) })
    return reply.code(e.status).header("cache-control", "no-store").send(errorBody(e))
  })

  app.addHook("onResponse", async (req, reply) => {
    if (req.routeOptions.config.access === undefined) return
    deps.logRequest?.({
      message: "api request",
      method: req.method,
      route: req.routeOptions.url ?? "unmatched",
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
      tokenId: (req as FastifyRequest & { principal?: Principal }).principal?.tokenId ?? null
    })
  })

  await app.register(
    async (api) => {
      for (const r of routes) await api.register(r(deps))
    },
    { prefix: API_PREFIX }
  )
}
