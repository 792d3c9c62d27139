import { Cause, Effect, Either, Exit, Fiber, Option, Runtime } from "effect"
import Fastify from "fastify"
import type { FastifyInstance, FastifyPluginAsync } from "fastify"
import { InvalidUpdate } from "../actors/inbox.js"
import type { InboxService } from "../actors/inbox.js"
import { BOT_ID_PATTERN } from "../events/partition.js"
import type { BotApi, BotApiError } from "./botApi.js"
import { inboxIngressStore } from "./ingressStore.js"
import type { IngressStore } from "./ingressStore.js"
import type { UpdateDedupe } from "./updateDedupe.js"
import { updateProblem } from "./updateShape.pure.js"
import { secretDigest, secretMatchesDigest } from "./webhookSecret.js"

/**
 * The webhook ingress: ONE HTTP server for the whole fleet, `POST /telegram/<botId>`.
 *
 * Checks, in this order, each answered before anything is written:
 * 1. the secret header, compared in constant time → 401 (checked before the body is even read);
 * 2. the bot is known and running → 404 (503 if the directory cannot say);
 * 3. body size → 413, JSON syntax → 400, Update shape → 400 with the reason.
 * Then the update is put in the bot's inbox and only THEN answered 200 (DESIGN invariant 2); the
 * ingress never waits for the bot to handle it. An unreachable inbox store answers 503, which
 * makes Telegram deliver again later.
 */

export type BotStatusAtIngress = "running" | "stopped" | "unknown"

export interface IngressOptions {
  readonly inbox: InboxService
  /** Whether a bot takes updates now (known and running on the fleet). */
  readonly botStatus: (botId: string) => Effect.Effect<BotStatusAtIngress, unknown>
  /** The webhook secret the bot was registered with (see webhookSecret.ts). */
  readonly secretFor: (botId: string) => string
  /** Optional edge dedupe; the decider dedupes in any case. */
  readonly dedupe?: UpdateDedupe
  /**
   * Where accepted updates go, dedupe included, in one step (production: `redisIngressStore`, one
   * Redis round trip). Default: `inbox` and `dedupe`, step by step.
   */
  readonly store?: IngressStore
  /** Largest body accepted, bytes (default 1 MiB; Telegram's updates are far smaller). */
  readonly bodyLimit?: number
  /** Told about every accepted update (metrics). */
  readonly onAccepted?: (botId: string, updateId: number) => void
}

const problem = (status: number, error: string) => ({ status, body: { ok: false, error } })

/** Most bots whose expected-secret digest the ingress keeps; past it the cache starts over. */
const SECRET_CACHE_MAX = 100_000

/**
 * The bot's status without a promise round trip when the lookup is synchronous (the node's is: a
 * Set). An asynchronous lookup goes on in the fiber runSyncExit started, and is awaited, not asked
 * again. A lookup that fails is `null` (→ 503).
 */
const statusOf = async (o: IngressOptions, botId: string): Promise<BotStatusAtIngress | null> => {
  const now = Effect.runSyncExit(Effect.either(o.botStatus(botId)))
  if (Exit.isSuccess(now)) return Either.isRight(now.value) ? now.value.right : null
  const died = Cause.dieOption(now.cause)
  if (Option.isNone(died) || !Runtime.isAsyncFiberException(died.value)) return null
  const later = await Effect.runPromise(Fiber.join(died.value.fiber as Fiber.RuntimeFiber<Either.Either<BotStatusAtIngress, unknown>>)).catch(() => null)
  return later !== null && Either.isRight(later) ? later.right : null
}

/** Builds the ingress routes on a Fastify instance (not listening yet). */
export const buildIngress = (o: IngressOptions): FastifyInstance => {
  const app = Fastify({ logger: false, bodyLimit: o.bodyLimit ?? 1024 * 1024 })
  const store = o.store ?? inboxIngressStore(o.inbox, o.dedupe)
  // the expected secret's digest per bot: an HMAC and a hash saved on every request
  const digests = new Map<string, Buffer>()
  const invalidDigest = secretDigest("-")
  const expectedDigest = (botId: string) => {
    let d = digests.get(botId)
    if (d === undefined) {
      if (digests.size >= SECRET_CACHE_MAX) digests.clear()
      d = secretDigest(o.secretFor(botId))
      digests.set(botId, d)
    }
    return d
  }
  app.setErrorHandler((error: { statusCode?: number; code?: string; message: string }, _req, reply) => {
    if (error.code === "FST_ERR_CTP_BODY_TOO_LARGE" || error.statusCode === 413) {
      return reply.code(413).send(problem(413, "the body is larger than the ingress accepts").body)
    }
    if (error.statusCode === 400 || error.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE" || error.code === "FST_ERR_CTP_EMPTY_JSON_BODY") {
      return reply.code(400).send(problem(400, `the body is not a JSON update: ${error.message}`).body)
    }
    if (error.statusCode === 415) return reply.code(415).send(problem(415, "updates are sent as application/json").body)
    return reply.code(500).send(problem(500, "internal error").body)
  })

  app.post<{ Params: { botId: string } }>("/telegram/:botId", {
    onRequest: async (req, reply) => {
      const { botId } = req.params
      const secret = req.headers["x-telegram-bot-api-secret-token"]
      // unknown ids still go through the comparison, so timing does not tell which ids exist
      const valid = BOT_ID_PATTERN.test(botId)
      if (!secretMatchesDigest(typeof secret === "string" ? secret : undefined, valid ? expectedDigest(botId) : invalidDigest) || !valid) {
        return reply.code(401).send(problem(401, "wrong or missing X-Telegram-Bot-Api-Secret-Token").body)
      }
      const status = await statusOf(o, botId)
      if (status === null) return reply.code(503).send(problem(503, "the fleet directory is unreachable; retry").body)
      if (status !== "running") return reply.code(404).send(problem(404, `bot ${botId} is ${status === "stopped" ? "stopped" : "unknown"}`).body)
      return undefined
    },
    handler: async (req, reply) => {
      const { botId } = req.params
      const why = updateProblem(req.body)
      if (why !== null) return reply.code(400).send(problem(400, why).body)
      const update = req.body as { update_id: number }
      let outcome: "stored" | "duplicate"
      try {
        outcome = await store.accept(botId, update)
      } catch (e) {
        return e instanceof InvalidUpdate
          ? reply.code(400).send(problem(400, e.reason).body)
          : reply.code(503).send(problem(503, "the inbox store is unreachable; deliver again later").body)
      }
      if (outcome === "duplicate") return reply.code(200).send({ ok: true, duplicate: true })
      o.onAccepted?.(botId, update.update_id)
      return reply.code(200).send({ ok: true })
    }
  })
  return app
}

export interface Ingress {
  /** Base URL, e.g. `http://127.0.0.1:8443`; a bot's webhook is `<url>/telegram/<botId>`. */
  readonly url: string
  readonly close: () => Promise<void>
}

export const startIngress = async (
  o: IngressOptions & {
    readonly port?: number
    readonly host?: string
    /** Served by the same server, beside the webhook (metrics, health, the API), registered before it listens. */
    readonly plugins?: ReadonlyArray<FastifyPluginAsync>
  }
): Promise<Ingress> => {
  const app = buildIngress(o)
  for (const plugin of o.plugins ?? []) await app.register(plugin)
  const url = await app.listen({ port: o.port ?? 0, host: o.host ?? "127.0.0.1" })
  return { url, close: () => app.close() }
}

/**
 * Registers a bot's webhook when it starts in webhook mode: `setWebhook` with the bot's secret
 * and the update kinds it wants. Idempotent, so safe to repeat on every start.
 */
export const registerWebhook = (
  api: BotApi,
  args: { readonly publicUrl: string; readonly botId: string; readonly secret: string; readonly allowedUpdates?: ReadonlyArray<string> }
): Effect.Effect<void, BotApiError> =>
  api
    .call("setWebhook", {
      url: `${args.publicUrl.replace(/\/+$/, "")}/telegram/${args.botId}`,
      secret_token: args.secret,
      ...(args.allowedUpdates ? { allowed_updates: args.allowedUpdates } : {})
    })
    .pipe(Effect.asVoid)
