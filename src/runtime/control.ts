import { randomUUID } from "node:crypto"
import type { RedisClient } from "../health/redisHealth.js"
import { Data, Effect, Schema } from "effect"
import type { Scope } from "effect"
import { openRedis, publishCounted } from "../health/redisHealth.js"
import type { ActorCommand } from "../actors/actor.js"
import type { Supervisor } from "../actors/supervisor.js"
import { announceForget } from "../privacy/keyCache.js"

/*
 * The fleet's control channel (Redis pub/sub, production mode): how `botfleet bots configure |
 * stop | remove | start | add` reach a bot that a node is running. The node holding the bot's
 * lease is the bot's only writer, so the CLI does not append itself: it asks that node, whose
 * actor applies the command between two inputs (the same decider, fence and version checks) and
 * answers. Stop and remove also reach every other node, which stops supervising the bot, so no
 * waiting node takes it over once its lease is released. Start asks every node to supervise a
 * bot now instead of at its next start. A rotated token is recorded by the bot's actor, which then
 * runs again with it (its poller or webhook use the token).
 */

export const ControlRequest = Schema.Union(
  Schema.TaggedStruct("Configure", { requestId: Schema.String, botId: Schema.String, patch: Schema.Unknown }),
  Schema.TaggedStruct("Stop", { requestId: Schema.String, botId: Schema.String, reason: Schema.String }),
  Schema.TaggedStruct("Remove", { requestId: Schema.String, botId: Schema.String, reason: Schema.String }),
  /** The new token, checked and sealed by the CLI: only its ciphertext crosses the channel. */
  Schema.TaggedStruct("RotateToken", { requestId: Schema.String, botId: Schema.String, tokenCiphertext: Schema.String }),
  Schema.TaggedStruct("StartBot", { requestId: Schema.String, botId: Schema.String }),
  /**
   * A user of the bot was forgotten (docs/privacy.md): every node drops the user's key from the
   * key caches of all its threads, and the node running the bot runs it again, so its memory
   * holds nothing of the user that was opened before the key was destroyed. No answer.
   */
  Schema.TaggedStruct("ForgetUser", { requestId: Schema.String, botId: Schema.String, userId: Schema.Number }),
  /** A live setting for one node (`target` its id) or every node ("*"); value null: back to the start value. */
  Schema.TaggedStruct("SetSetting", { requestId: Schema.String, target: Schema.String, name: Schema.String, value: Schema.NullOr(Schema.String) }),
  /** Each addressed node answers with every setting's value in effect and its source. */
  Schema.TaggedStruct("DescribeSettings", { requestId: Schema.String, target: Schema.String })
)
export type ControlRequest = typeof ControlRequest.Type
/** The requests about the node itself rather than one bot (runtime/settingsControl.ts). */
export type NodeRequest = Extract<ControlRequest, { _tag: "SetSetting" | "DescribeSettings" }>
type BotRequest = Exclude<ControlRequest, NodeRequest>

/** The holder's answer: the bot's stream version after the command, or why it refused. */
export const ControlReply = Schema.Struct({
  requestId: Schema.String,
  nodeId: Schema.String,
  ok: Schema.Boolean,
  version: Schema.optional(Schema.Number),
  error: Schema.optional(Schema.String),
  /** The node held the bot's lease without a running actor: it stopped supervising it and released the lease, recording nothing. */
  released: Schema.optional(Schema.Boolean)
})
export type ControlReply = typeof ControlReply.Type

export const channelOf = (prefix: string) => `${prefix}:control`
export const replyChannelOf = (prefix: string, requestId: string) => `${prefix}:control:reply:${requestId}`
const decodeRequest = Schema.decodeUnknownEither(Schema.parseJson(ControlRequest))
const decodeReply = Schema.decodeUnknownEither(Schema.parseJson(ControlReply))

export interface ControlServerOptions {
  readonly redisUrl: string
  readonly prefix: string
  readonly nodeId: string
  readonly supervisor: Supervisor
  /** Starts supervising a bot (the node's own startBot: the ingress learns it too). */
  readonly startBot: (botId: string) => Effect.Effect<void>
  /** The node no longer runs this bot (the ingress answers 404 for it again). */
  readonly forgetBot: (botId: string) => void
  /** Answers the node requests (live settings); its answer (when not null) is published as the reply. */
  readonly onNodeRequest?: (request: NodeRequest) => Effect.Effect<unknown>
}

const commandOf = (r: Exclude<BotRequest, { _tag: "StartBot" | "ForgetUser" }>): ActorCommand => {
  switch (r._tag) {
    case "Configure":
      return { _tag: "ChangeConfig", patch: r.patch }
    case "Stop":
      return { _tag: "Stop", reason: r.reason }
    case "Remove":
      return { _tag: "Remove", reason: r.reason }
    case "RotateToken":
      return { _tag: "RotateToken", tokenCiphertext: r.tokenCiphertext }
  }
}

/** Runs a bot again when this node runs it: its state is folded afresh from the log (after a user's erasure: `[erased]`). */
export const restartIfRunning = (o: { readonly supervisor: Supervisor; readonly startBot: (botId: string) => Effect.Effect<void> }, botId: string) =>
  Effect.gen(function* () {
    const status = yield* o.supervisor.status(botId)
    if (status?.state !== "running") return
    yield* o.supervisor.stopBot(botId)
    yield* o.startBot(botId)
  })

/** Serves the control channel for this node, in the scope (its two Redis connections close with it). */
export const serveControl = (o: ControlServerOptions): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const sub = yield* Effect.acquireRelease(
      Effect.sync(() => openRedis(o.redisUrl, "control-subscriber", { maxRetriesPerRequest: null })),
      (r) => Effect.sync(() => r.disconnect())
    )
    const pub = yield* Effect.acquireRelease(
      Effect.sync(() => openRedis(o.redisUrl, "control-publisher", { maxRetriesPerRequest: 2 })),
      (r) => Effect.sync(() => r.disconnect())
    )
    const reply = (r: ControlReply) => Effect.promise(() => pub.publish(replyChannelOf(o.prefix, r.requestId), JSON.stringify(r)).catch(() => 0))

    const handle = (req: ControlRequest) =>
      Effect.gen(function* () {
        if (req._tag === "SetSetting" || req._tag === "DescribeSettings") {
          const answer = o.onNodeRequest ? yield* o.onNodeRequest(req) : null
          if (answer !== null) yield* Effect.promise(() => pub.publish(replyChannelOf(o.prefix, req.requestId), JSON.stringify(answer)).catch(() => 0))
          return
        }
        if (req._tag === "StartBot") return yield* o.startBot(req.botId)
        if (req._tag === "ForgetUser") {
          announceForget(req.botId, req.userId)
          return yield* restartIfRunning(o, req.botId)
        }
        const status = yield* o.supervisor.status(req.botId)
        const holder = status !== null && status.fence !== null
        if (status?.state !== "running") {
          // stop and remove end our supervision in any case (no node may take the bot over)
          if ((req._tag === "Stop" || req._tag === "Remove") && status !== null) {
            o.forgetBot(req.botId)
            yield* o.supervisor.stopBot(req.botId)
          }
          // only the holder answers: with no actor running (restarting, starting) it cannot
          // apply a change; a stop or remove has now released the lease for the CLI to record it
          if (!holder) return
          if (req._tag === "Configure") {
            return yield* reply({ requestId: req.requestId, nodeId: o.nodeId, ok: false, error: `the bot is ${status.state} on this node, not running: try again once it runs` })
          }
          // a new token for a bot that cannot run (e.g. crashing on the old one): the CLI records it, then starts it
          if (req._tag === "RotateToken") yield* o.supervisor.stopBot(req.botId)
          return yield* reply({ requestId: req.requestId, nodeId: o.nodeId, ok: true, released: true })
        }
        const sent = yield* Effect.either(o.supervisor.send(req.botId, commandOf(req)))
        if (sent._tag === "Left") {
          // ended between the status and the command: the CLI hears nothing and says so
          if (sent.left._tag === "NotRunning") return
          return yield* reply({ requestId: req.requestId, nodeId: o.nodeId, ok: false, error: sent.left.reason })
        }
        if (req._tag === "Stop" || req._tag === "Remove") o.forgetBot(req.botId)
        if (req._tag === "RotateToken") {
          // its poller or webhook still hold the old token: run the bot again with the new one
          yield* o.supervisor.stopBot(req.botId)
          yield* o.startBot(req.botId)
        }
        yield* reply({ requestId: req.requestId, nodeId: o.nodeId, ok: true, version: sent.right.version })
      })

    sub.on("message", (_channel: string, raw: string) => {
      const req = decodeRequest(raw)
      if (req._tag === "Left") {
        Effect.runFork(Effect.logWarning("control channel: a message that is not a control request was ignored"))
        return
      }
      Effect.runFork(handle(req.right).pipe(Effect.catchAllCause((cause) => Effect.logWarning("control channel: request failed", cause))))
    })
    yield* Effect.tryPromise(() => sub.subscribe(channelOf(o.prefix))).pipe(Effect.orDie)
  })

/** No node confirmed the command in time: it may still be applied late, or not at all. */
export class NodeDidNotAnswer extends Data.TaggedError("NodeDidNotAnswer")<{ readonly botId: string; readonly nodeId: string; readonly waitedMs: number }> {
  override get message() {
    return (
      `bot ${this.botId} runs on node ${this.nodeId}, which did not confirm the command within ${this.waitedMs} ms.\n` +
      `Check that node (botfleet status) and the bot's events (botfleet events ${this.botId}) before running the command again.`
    )
  }
}

/** The node running the bot refused the command (e.g. a config patch that is not an object). Nothing was recorded. */
export class NodeRefused extends Data.TaggedError("NodeRefused")<{ readonly botId: string; readonly nodeId: string; readonly reason: string }> {
  override get message() {
    return `bot ${this.botId}: node ${this.nodeId} refused the command: ${this.reason}`
  }
}

export class ControlUnavailable extends Data.TaggedError("ControlUnavailable")<{ readonly cause: unknown }> {
  override get message() {
    return `the control channel (Redis at REDIS_URL) is unreachable: ${this.cause instanceof Error ? this.cause.message : String(this.cause)}`
  }
}

type Request = BotRequest extends infer R ? (R extends BotRequest ? Omit<R, "requestId"> : never) : never

/**
 * Publishes a control request. For a bot command (configure, stop, remove), waits for the answer
 * of `nodeId`, the node holding the bot's lease, and resolves with the bot's version after it.
 * For StartBot, or with `awaitReply: false` (a stop the CLI recorded itself, told to the nodes so
 * that none wakes the bot again), resolves at once with how many nodes heard it.
 */
export const sendControl = (
  o: { readonly redisUrl: string; readonly prefix: string; readonly nodeId?: string; readonly timeoutMs?: number; readonly awaitReply?: boolean },
  request: Request
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const requestId = randomUUID()
      const timeoutMs = o.timeoutMs ?? 15_000
      const open = (r: RedisClient) => Effect.acquireRelease(Effect.succeed(r), (x) => Effect.sync(() => x.disconnect()))
      const pub = yield* open(openRedis(o.redisUrl, "control-request", { maxRetriesPerRequest: 1, lazyConnect: true }))
      const publish = Effect.tryPromise({
        try: async () => {
          if (pub.status === "wait") await pub.connect()
          return publishCounted(pub, channelOf(o.prefix), JSON.stringify({ ...request, requestId }))
        },
        catch: (cause) => new ControlUnavailable({ cause })
      })
      if (request._tag === "StartBot" || request._tag === "ForgetUser" || o.awaitReply === false) return { heardBy: yield* publish, version: null as number | null, released: false }
      const sub = yield* open(openRedis(o.redisUrl, "control-reply", { maxRetriesPerRequest: 1, lazyConnect: true }))
      const answer = Effect.async<ControlReply>((resume) => {
        sub.on("message", (_c: string, raw: string) => {
          const r = decodeReply(raw)
          if (r._tag === "Right" && (o.nodeId === undefined || r.right.nodeId === o.nodeId)) resume(Effect.succeed(r.right))
        })
      })
      // subscribed before publishing: the answer cannot come first
      yield* Effect.tryPromise({
        try: async () => {
          await sub.connect()
          await sub.subscribe(replyChannelOf(o.prefix, requestId))
        },
        catch: (cause) => new ControlUnavailable({ cause })
      })
      const heardBy = yield* publish
      const nodeId = o.nodeId ?? "(any)"
      const r = yield* answer.pipe(
        Effect.timeoutFail({ duration: timeoutMs, onTimeout: () => new NodeDidNotAnswer({ botId: request.botId, nodeId, waitedMs: timeoutMs }) })
      )
      if (!r.ok) return yield* new NodeRefused({ botId: request.botId, nodeId: r.nodeId, reason: r.error ?? "no reason given" })
      return { heardBy, version: r.version ?? null, released: r.released === true }
    })
  )
