import { randomUUID } from "node:crypto"
import type { RedisClient } from "../health/redisHealth.js"
import { openRedis, publishCounted } from "../health/redisHealth.js"
import { Effect, Schema } from "effect"
import { ControlUnavailable, channelOf, replyChannelOf } from "./control.js"
import type { NodeRequest } from "./control.js"
import type { LiveSettings } from "./liveSettings.js"

/*
 * Live settings over the control channel (Redis pub/sub, production mode). `botfleet config set`
 * sends SetSetting to one node or to all; each addressed node applies it (validated again against
 * its own configuration) and answers with the old and new value. `botfleet config` sends
 * DescribeSettings and each node answers with every setting's value in effect and its source.
 * The CLI knows how many nodes to wait for: PUBLISH returns how many subscribers got the request
 * (summed over the nodes in Redis Cluster: publishCounted), and only nodes subscribe to the
 * control channel.
 */

const SettingRow = Schema.Struct({ name: Schema.String, value: Schema.String, source: Schema.String, live: Schema.Boolean })

/** A node's answer to a node request. */
export const NodeReply = Schema.Struct({
  requestId: Schema.String,
  nodeId: Schema.String,
  ok: Schema.Boolean,
  error: Schema.optional(Schema.String),
  /** Not the node addressed: it heard the request and did nothing (so the CLI need not wait for it). */
  skipped: Schema.optional(Schema.Boolean),
  /** SetSetting: what changed. */
  change: Schema.optional(Schema.Struct({ name: Schema.String, old: Schema.String, value: Schema.String, source: Schema.String })),
  /** DescribeSettings: every setting in effect. */
  settings: Schema.optional(Schema.Array(SettingRow))
})
export type NodeReply = typeof NodeReply.Type
const decodeReply = Schema.decodeUnknownEither(Schema.parseJson(NodeReply))

/** The node side: answers the requests addressed to `nodeId` (or to every node); the others with `skipped`. */
export const answerNodeRequest = (nodeId: string, live: LiveSettings) => (req: NodeRequest): Effect.Effect<NodeReply> => {
  if (req.target !== "*" && req.target !== nodeId) return Effect.succeed({ requestId: req.requestId, nodeId, ok: true, skipped: true })
  if (req._tag === "DescribeSettings") return Effect.succeed({ requestId: req.requestId, nodeId, ok: true, settings: live.describe() })
  return live.set(req.name, req.value).pipe(
    Effect.tap((c) => Effect.logInfo(`live setting ${c.name} changed: ${c.old} → ${c.value}`).pipe(Effect.annotateLogs({ setting: c.name, source: c.source }))),
    Effect.map((change): NodeReply => ({ requestId: req.requestId, nodeId, ok: true, change })),
    Effect.catchAll((e) => Effect.succeed<NodeReply>({ requestId: req.requestId, nodeId, ok: false, error: e.message }))
  )
}

/**
 * What the nodes answered: `heardBy` nodes got the request; `replies` from the nodes addressed;
 * `missing`: nodes that did not answer in time (of those addressed, when one node was named and
 * every other node said it is not that one, none are missing).
 */
export interface NodeAnswers {
  readonly heardBy: number
  readonly replies: ReadonlyArray<NodeReply>
  readonly missing: number
}

type Request = NodeRequest extends infer R ? (R extends NodeRequest ? Omit<R, "requestId"> : never) : never

/**
 * Sends a node request and collects the answers: every node that heard it (target "*"), or the
 * one addressed, within `timeoutMs`. Subscribed to the reply channel before publishing, so no
 * answer can come first.
 */
export const askNodes = (o: { readonly redisUrl: string; readonly prefix: string; readonly timeoutMs: number }, request: Request): Effect.Effect<NodeAnswers, ControlUnavailable> =>
  Effect.scoped(
    Effect.gen(function* () {
      const requestId = randomUUID()
      const open = (r: RedisClient) => Effect.acquireRelease(Effect.succeed(r), (x) => Effect.sync(() => x.disconnect()))
      const sub = yield* open(openRedis(o.redisUrl, "settings-sub", { maxRetriesPerRequest: 1, lazyConnect: true }))
      const pub = yield* open(openRedis(o.redisUrl, "settings-pub", { maxRetriesPerRequest: 1, lazyConnect: true }))
      const replies: Array<NodeReply> = []
      let expected = Number.POSITIVE_INFINITY
      let wake: () => void = () => {}
      const complete = () => replies.length >= expected
      sub.on("message", (_c: string, raw: string) => {
        const r = decodeReply(raw)
        if (r._tag === "Right" && r.right.requestId === requestId && !replies.some((x) => x.nodeId === r.right.nodeId)) {
          replies.push(r.right)
          if (complete()) wake()
        }
      })
      const heardBy = yield* Effect.tryPromise({
        try: async () => {
          await sub.connect()
          await sub.subscribe(replyChannelOf(o.prefix, requestId))
          await pub.connect()
          return publishCounted(pub, channelOf(o.prefix), JSON.stringify({ ...request, requestId }))
        },
        catch: (cause) => new ControlUnavailable({ cause })
      })
      // every node that heard it answers (those not addressed with `skipped`)
      expected = heardBy
      if (!complete()) {
        yield* Effect.async<void>((resume) => {
          wake = () => resume(Effect.void)
          if (complete()) resume(Effect.void)
        }).pipe(Effect.timeoutTo({ duration: o.timeoutMs, onSuccess: () => undefined, onTimeout: () => undefined }))
      }
      const addressed = replies.filter((r) => r.skipped !== true).sort((a, b) => a.nodeId.localeCompare(b.nodeId))
      const silent = Math.max(0, expected - replies.length)
      // a named node that answered, or every node answered without it: nobody else is awaited
      const missing = request.target === "*" ? silent : addressed.length > 0 || silent === 0 ? 0 : 1
      return { heardBy, replies: addressed, missing }
    })
  )
