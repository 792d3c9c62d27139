import { Effect, Either } from "effect"
import fc from "fast-check"
import { beforeAll, describe, expect, it } from "vitest"
import type { SqlClient } from "../../src/db/sql.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import type { DomainEvent } from "../../src/events/schema/catalogue.js"
import { makeProjector } from "../../src/projections/projector.js"
import type { Projector } from "../../src/projections/projector.js"
import { useMigratedDatabase } from "../support/db.js"
import { appendFacts, dumpTables, registered, truncateProjections } from "./fixtures.js"

const database = useMigratedDatabase("projector_redelivery")
let sql: SqlClient
beforeAll(() => {
  sql = database()
})

const TOKEN = "123456789:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
const day = fc.constantFrom("2026-01-01T10:00:00.000Z", "2026-01-01T23:59:59.999+00:00", "2026-01-02T00:30:00+01:00", "2026-01-02T08:00:00Z")
const fact: fc.Arbitrary<DomainEvent> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ chatId: fc.integer({ min: 1, max: 3 }), userId: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }), messageId: fc.nat(1000), text: fc.string({ maxLength: 8 }), at: day })
      .map((m): DomainEvent => ({ _tag: "MessageReceived", chatType: m.chatId === 3 ? "group" : "private", ...m })) },
  { weight: 3, arbitrary: fc.record({ chatId: fc.integer({ min: 1, max: 4 }), messageId: fc.nat(1000), at: day })
      .map((m): DomainEvent => ({ _tag: "ReplySent", text: "re", ...m })) },
  { weight: 2, arbitrary: fc.record({ userId: fc.integer({ min: 1, max: 4 }), firstName: fc.constantFrom("Ann", "Bo"), lastName: fc.option(fc.constant("Lee"), { nil: undefined }), at: day })
      .map((u): DomainEvent => ({ _tag: "UserSeen", ...u })) },
  { weight: 1, arbitrary: fc.record({ userId: fc.integer({ min: 1, max: 4 }), at: day }).map((u): DomainEvent => ({ _tag: "UserBlockedBot", ...u })) },
  { weight: 1, arbitrary: fc.record({ a: fc.constantFrom(1, null), b: fc.constantFrom({ c: 1 }, { c: null }, null) })
      .map((patch): DomainEvent => ({ _tag: "BotConfigChanged", patch })) },
  { weight: 1, arbitrary: fc.constantFrom<DomainEvent>(
      { _tag: "BotStarted", nodeId: "n1", fence: 1 },
      { _tag: "BotCrashed", nodeId: "n1", reason: `GET /bot${TOKEN}/getMe failed`, attempt: 1 },
      { _tag: "BotStopped", nodeId: "n1", reason: "drain" }) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 3 }).chain((n) => fc.constantFrom<DomainEvent>(
      { _tag: "BotApiCallIntended", callId: `c${n}`, method: "sendMessage", params: { chat_id: n, text: "hi" } },
      { _tag: "BotApiCallSucceeded", callId: `c${n}`, result: { message_id: 50 + n } },
      { _tag: "BotApiCallFailed", callId: `c${n}`, errorCode: 403, description: "Forbidden: bot was blocked by the user" })) }
)

/** What happens to the fleet and its projectors, in order. */
type Action =
  | { readonly kind: "append"; readonly bot: number; readonly facts: ReadonlyArray<DomainEvent> }
  | { readonly kind: "step"; readonly partition: number; readonly instance: number; readonly batch: number }
  | { readonly kind: "crash"; readonly partition: number; readonly instance: number; readonly batch: number }
  | { readonly kind: "steal"; readonly partition: number; readonly count: number }

const BOTS = ["alpha", "bravo", "charlie", "delta"]
const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ kind: fc.constant("append" as const), bot: fc.integer({ min: 0, max: BOTS.length }), facts: fc.array(fact, { minLength: 1, maxLength: 6 }) }),
  fc.record({ kind: fc.constant("step" as const), partition: fc.integer({ min: 0, max: 1 }), instance: fc.integer({ min: 0, max: 1 }), batch: fc.integer({ min: 1, max: 7 }) }),
  fc.record({ kind: fc.constant("crash" as const), partition: fc.integer({ min: 0, max: 1 }), instance: fc.integer({ min: 0, max: 1 }), batch: fc.integer({ min: 1, max: 7 }) }),
  fc.record({ kind: fc.constant("steal" as const), partition: fc.integer({ min: 0, max: 1 }), count: fc.integer({ min: 1, max: 5 }) })
)

const drain = async (p: Projector) => {
  for (let i = 0; i < 10_000; i++) {
    const r = await Effect.runPromise(p.step)
    if (r.caughtUp && r.projected === 0 && r.deadLettered === 0) return
  }
  throw new Error("never caught up")
}

describe("projector under redelivery, reordering, concurrent instances and crashes", () => {
  it("ends with exactly the rows of one clean pass, and nothing left pending", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 5, maxLength: 30 }), async (actions) => {
        await truncateProjections(sql)
        const log = makeMemoryEventLog({ partitions: 2 })
        const registeredBots = new Set<number>()
        let calls = 0
        // two instances per partition run at once (a stale one and a fresh one), each replaced when it crashes
        const instances = new Map<string, Projector>()
        const make = (partition: number, instance: number, batch: number, crash: boolean) =>
          makeProjector({
            log, sql, partition, consumer: `p${partition}-i${instance}`, batchSize: batch, blockMs: 0, reclaimIdleMs: 0,
            ...(crash ? { beforeCommit: () => { throw new Error("killed mid-batch") } } : {})
          })
        for (const a of actions) {
          if (a.kind === "append") {
            // bot index BOTS.length is a bot that never registers: its events are dead-lettered
            const botId = BOTS[a.bot] ?? "ghost"
            // as the decider records them: call ids are unique, an outcome follows its call
            const withCalls = a.facts.flatMap((f): DomainEvent[] =>
              f._tag === "BotApiCallIntended" ? [{ ...f, callId: `call-${calls++}` }]
              : f._tag === "BotApiCallSucceeded" || f._tag === "BotApiCallFailed"
                ? calls === 0 ? [] : [{ ...f, callId: `call-${Number(f.callId.slice(1)) % calls}` }]
              : [f])
            const facts = a.bot < BOTS.length && !registeredBots.has(a.bot) ? [registered(`owner-${a.bot % 2}`, botId), ...withCalls] : withCalls
            registeredBots.add(a.bot)
            await appendFacts(log, botId, facts)
          } else if (a.kind === "steal") {
            // another consumer of the group takes entries and dies holding them
            await Effect.runPromise(log.ensureGroup(a.partition, "projections", "start"))
            await Effect.runPromise(log.readGroup({ partition: a.partition, group: "projections", consumer: "doomed", count: a.count }))
          } else {
            const key = `${a.partition}/${a.instance}`
            const p = a.kind === "crash" ? make(a.partition, a.instance, a.batch, true) : (instances.get(key) ?? make(a.partition, a.instance, a.batch, false))
            const r = await Effect.runPromise(Effect.either(p.step))
            if (a.kind === "crash") {
              instances.delete(key) // the process died; its successor starts fresh
            } else {
              if (Either.isLeft(r)) throw r.left
              instances.set(key, p)
            }
          }
        }
        for (const partition of [0, 1]) await drain(make(partition, 0, 5, false))
        const perturbed = await dumpTables(sql)
        const pending = [0, 1].map((p) => Effect.runSync(Effect.either(log.pendingCount(p, "projections"))))
        const dead = [0, 1].flatMap((p) => Effect.runSync(log.readDeadLetters(p))).map((d) => d.position)

        await truncateProjections(sql)
        for (const partition of [0, 1]) await drain(makeProjector({ log, sql, partition, group: "clean", batchSize: 1000, blockMs: 0 }))
        const clean = await dumpTables(sql)

        expect(perturbed).toEqual(clean)
        for (const p of pending) if (Either.isRight(p)) expect(p.right).toBe(0)
        // the never-registered bot's events are the dead letters, each at least once
        const ghost = new Set([0, 1].flatMap((p) => Effect.runSync(log.readPartition(p))).filter((d) => d.raw["botId"] === "ghost").map((d) => d.position))
        expect(new Set(dead.filter((p) => ghost.has(p)))).toEqual(ghost)
        // the derived tables scrub token-shaped text (the archive keeps the events exactly as written)
        const { events_archive: _archive, ...derived } = clean
        expect(JSON.stringify(derived)).not.toContain(TOKEN)
      }),
      { numRuns: 25 }
    )
  })
})
