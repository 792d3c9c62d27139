import type { FastifyPluginAsync } from "fastify"
import { Effect } from "effect"
import { runVerification } from "../../audit/periodic.js"
import { botRows } from "../../cli/bots/botRows.js"
import { projectionLag } from "../../projections/lag.js"
import type { ApiDeps } from "./apiContext.js"
import { ApiError } from "./apiErrors.js"
import { runWrite } from "./botWriteRoutes.js"
import { errors } from "./schemas.js"

/*
 * Ops routes (admin tokens only): the fleet's status, the log's dead letters and their retry,
 * and an audit chain verification: what `botfleet status`, `dlq list|retry` and `audit verify`
 * show, through the same functions. They see every owner, as ops do: an owner token gets 403.
 */

const DeadLetter = {
  type: "object",
  properties: {
    partition: { type: "integer" },
    id: { type: "string" },
    group: { type: "string" },
    position: { type: "string" },
    reason: { type: "string" },
    deliveryCount: { type: "integer" },
    at: { type: "string" }
  }
} as const

export const opsRoutes = (deps: ApiDeps): FastifyPluginAsync => async (app) => {
  const admin = { access: "admin" as const }
  const deadLetters = Effect.forEach(Array.from({ length: deps.partitions }, (_, p) => p), (p) => deps.log.readDeadLetters(p)).pipe(Effect.map((all) => all.flat()))

  app.get("/fleet/status", {
    config: admin,
    schema: {
      tags: ["ops"],
      summary: "Per bot: state, version, node, crashes, last error, inbox lag; per partition: projection lag, stalled projector, dead letters",
      response: { 200: { type: "object", additionalProperties: true, properties: { bots: { type: "array", items: { type: "object", additionalProperties: true } }, partitions: { type: "array", items: { type: "object", additionalProperties: true } } } }, ...errors }
    }
  }, async () =>
    runWrite(
      Effect.gen(function* () {
        const bots = yield* botRows({ log: deps.log, inbox: deps.inbox, sql: deps.sql })
        const lag = yield* projectionLag({ log: deps.log, sql: deps.sql })
        const dead = yield* deadLetters
        return {
          nodeId: deps.nodeId,
          bots,
          partitions: lag.map((l) => ({
            partition: l.partition,
            projectionLag: l.waiting,
            projectionLagCapped: l.waitingCapped,
            oldestWaitingAgeMs: l.oldestWaitingAgeMs,
            projectorStalled: l.stalled,
            deadLetters: dead.filter((d) => d.partition === l.partition).length
          }))
        }
      })
    ))

  app.get("/dead-letters", {
    config: admin,
    schema: { tags: ["ops"], summary: "Dead-lettered log entries of every partition, with their reasons", response: { 200: { type: "object", properties: { items: { type: "array", items: DeadLetter } } }, ...errors } }
  }, async () => ({ items: (await runWrite(deadLetters)).map(({ raw: _raw, ...d }) => d) }))

  app.post<{ Params: { partition: number; id: string } }>("/dead-letters/:partition/:id/retry", {
    config: admin,
    schema: {
      tags: ["ops"],
      summary: "Redeliver one dead-lettered entry to the consumer group that gave up on it, and take it off the list",
      params: { type: "object", required: ["partition", "id"], properties: { partition: { type: "integer", minimum: 0, maximum: 1023 }, id: { type: "string", minLength: 1, maxLength: 64 } } },
      response: { 200: { type: "object", properties: { retried: DeadLetter } }, ...errors }
    }
  }, async (req) => {
    const { partition, id } = req.params
    if (partition >= deps.partitions) throw new ApiError({ status: 404, code: "not_found", detail: `partition ${partition} not found` })
    const dead = await runWrite(deps.log.readDeadLetters(partition))
    const d = dead.find((x) => x.id === id)
    if (d === undefined) throw new ApiError({ status: 404, code: "not_found", detail: `dead letter ${id} of partition ${partition} not found` })
    await runWrite(deps.retryDeadLetter(d))
    const { raw: _raw, ...shown } = d
    return { retried: shown }
  })

  app.post("/audit/verify", {
    config: admin,
    schema: { tags: ["ops"], summary: "Verify the audit hash chain of every owner now; reports the first broken link", response: { 200: { type: "object", additionalProperties: true }, ...errors } }
  }, async () => {
    const { report } = await runWrite(runVerification({ sql: deps.sql, anchorKey: deps.anchorKey, nodeId: `api-${deps.nodeId}`.slice(0, 64), anchor: false, record: false }))
    return report
  })
}
