import { Effect, Either } from "effect"
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { EventLogService } from "../../src/events/eventLog.js"
import { redisKeys } from "../../src/events/partition.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import type { DomainEvent, NewEvent } from "../../src/events/schema/envelope.js"
import { encodePayload } from "../../src/events/schema/registry.js"
import { newEvent, updateReceived, userSeen } from "../support/events.js"
import { createTestPrefix } from "../support/redis.js"

const run = <A, E>(eff: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(eff)

/** The stream entry docs/redis.md documents: codec fields in this order, the bot stream adding `pos` first. */
const documentedFields = (botId: string, version: number, e: NewEvent & { eventId: string }) => {
  const p = Either.getOrThrow(encodePayload(e.data))
  return [
    "eventId", e.eventId, "botId", botId, "v", String(version), "type", p.type, "schemaVersion", String(p.schemaVersion),
    "occurredAt", e.occurredAt, "correlationId", e.correlationId, "causationId", e.causationId ?? "", "actor", e.actor,
    "data", JSON.stringify(p.json)
  ]
}

describe("redis append: what lands in the streams", () => {
  const t = createTestPrefix("redis-append-layout")
  let log: EventLogService
  let redis: Redis
  beforeAll(async () => {
    log = await run(makeRedisEventLog({ url: t.url, prefix: t.prefix }))
    redis = new Redis(t.url)
  })
  afterAll(async () => {
    await run(log.close)
    redis.disconnect()
    await t.cleanup()
  })

  it("writes each event's own fields, in the documented order, however its metadata varies within one append", async () => {
    const bot = "layout-runs-bot"
    const at = "2026-11-26T10:00:00.000Z"
    const same = { occurredAt: at, correlationId: "corr-a", actor: "system" }
    const events = [
      newEvent(updateReceived(1), same),
      newEvent(updateReceived(2), same),
      newEvent(userSeen(3, "Зоя 🐱"), same),
      newEvent(updateReceived(4), { ...same, correlationId: "corr-b", causationId: "cause-1" }),
      newEvent(updateReceived(5), { ...same, actor: "user:5" }),
      newEvent(updateReceived(6), { ...same, occurredAt: "2026-11-26T10:00:01.000Z" }),
      newEvent(updateReceived(7), same),
      newEvent({ _tag: "BotRegistered", ownerId: "o", name: "n", kind: "builtin", mode: "polling" } as DomainEvent, same)
    ].map((e, i) => ({ ...e, eventId: `evt-${i + 1}` }))
    const lease = await run(log.acquireLease(bot, "node-a", 30_000))
    const first = await run(log.append({ botId: bot, expectedVersion: 0, fence: lease!.fence, events: events.slice(0, 1) }))
    const r = await run(log.append({ botId: bot, expectedVersion: 1, fence: lease!.fence, events: events.slice(1) }))
    expect(r.version).toBe(events.length)

    const k = redisKeys(t.prefix, log.partitionOf(bot))
    const stream = await redis.xrange(k.stream(bot), "-", "+")
    const positions = [...first.positions, ...r.positions]
    expect(stream).toEqual(events.map((e, i) => [`${i + 1}-0`, ["pos", positions[i], ...documentedFields(bot, i + 1, e)]]))
    const logEntries = await redis.xrange(k.log, "-", "+")
    expect(logEntries).toEqual(events.map((e, i) => [positions[i], documentedFields(bot, i + 1, e)]))
  })
})
