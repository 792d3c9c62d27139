import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { BotActor } from "../../src/actors/actor.js"
import type { ActorDeps } from "../../src/actors/actor.js"
import { echoHandler } from "../../src/actors/decider/updateHandler.js"
import type { UpdateHandler } from "../../src/actors/decider/updateHandler.js"
import type { InboxService } from "../../src/actors/inbox.js"
import { makePostgresInbox } from "../../src/actors/postgresInbox.js"
import { makePostgresSnapshotStore } from "../../src/actors/postgresSnapshotStore.js"
import { makeRedisInbox } from "../../src/actors/redisInbox.js"
import { makeMemorySnapshotStore } from "../../src/actors/snapshotStore.js"
import { retryInboxDeadLetters } from "../../src/cli/commands/dlqInbox.js"
import { migrate } from "../../src/db/migrator.js"
import { makePgliteSql } from "../../src/db/pgliteSql.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makePostgresEventLog } from "../../src/events/postgresEventLog.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import { useMigratedDatabase, createTestDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"
import { captureCli } from "./support.js"

/*
 * `botfleet dlq list|retry --bot`: a bot whose handler throws on an update dead-letters it; the
 * owner fixes the handler; the retry re-enqueues the update, the bot handles it exactly once (one
 * reply recorded), and a second retry enqueues nothing. On the Redis inbox (production mode), the
 * Postgres inbox on a Postgres server, and the Postgres inbox on PGlite (embedded mode).
 */

const run = Effect.runPromise
const PARTITIONS = 4
const poison = { update_id: 41, message: { message_id: 410, chat: { id: 7, type: "private" }, from: { id: 99 }, text: "boom" } }
const fine = { update_id: 42, message: { message_id: 420, chat: { id: 7, type: "private" }, from: { id: 99 }, text: "fine" } }

/** The bot's handler, swapped by the test the way an owner deploys a fix. */
const owner = { handler: echoHandler as UpdateHandler }
const broken: UpdateHandler = {
  handle: (ctx) => {
    if (ctx.update.message?.text === "boom") throw new TypeError("cannot read 'boom'")
    return echoHandler.handle(ctx)
  }
}

const until = async (cond: () => Promise<boolean>, ms = 20_000) => {
  const end = Date.now() + ms
  while (Date.now() < end && !(await cond())) await new Promise((r) => setTimeout(r, 25))
  expect(await cond()).toBe(true)
}

const register = async (log: EventLogService, botId: string) => {
  const lease = (await run(log.acquireLease(botId, "setup", 10_000)))!
  await run(
    log.append({
      botId,
      expectedVersion: 0,
      fence: lease.fence,
      events: [{ occurredAt: new Date().toISOString(), correlationId: "c", actor: "system", data: { _tag: "BotRegistered", ownerId: "o", name: botId, kind: "echo", mode: "sandbox" } }]
    })
  )
  await run(log.releaseLease(lease))
}

/** Runs the bot's actor until `stop` is called; the handler is read at each update (owner.handler). */
const startActor = async (deps: Omit<ActorDeps, "handlerFor">, botId: string) => {
  const full: ActorDeps = { ...deps, handlerFor: () => ({ handle: (ctx) => owner.handler.handle(ctx) }) }
  const lease = (await run(deps.log.acquireLease(botId, "n1", 60_000)))!
  const actor = new BotActor(full, { botId, nodeId: "n1", fence: lease.fence, idleWaitMs: 50 })
  const done = actor.run()
  return {
    actor,
    stop: async () => {
      await actor.send({ _tag: "Stop", reason: "test" })
      await done
      await run(deps.log.releaseLease(lease))
    }
  }
}

const events = async (log: EventLogService, botId: string) => (await run(log.readStream(botId))).map((e) => e.data)
/** Replies recorded to the poison update (the echo answers in reply to its message). */
const repliesToPoison = async (log: EventLogService, botId: string) =>
  (await events(log, botId)).filter((e) => e._tag === "ReplySent" && e.inReplyTo === poison.message.message_id).length

/** Up to the dead letter: the broken handler throws on `poison`, handles `fine`. */
const deadLetterPoison = async (deps: { log: EventLogService; inbox: InboxService }, botId: string, actor: BotActor) => {
  owner.handler = broken
  await run(deps.inbox.enqueue(botId, poison))
  await run(deps.inbox.enqueue(botId, fine))
  await until(async () => actor.status().updatesFailed === 1 && actor.status().updatesHandled === 1)
  const dead = await run(deps.inbox.readDeadLetters(botId))
  expect(dead).toHaveLength(1)
  expect(dead[0]).toMatchObject({ update: poison, reason: "TypeError: cannot read 'boom'" })
  expect(await repliesToPoison(deps.log, botId)).toBe(0)
  owner.handler = echoHandler
  return dead[0]!.entryId
}

/** After the retry: handled once, one reply, nothing left in the dead letters or the inbox. */
const expectHandledOnce = async (deps: { log: EventLogService; inbox: InboxService }, botId: string) => {
  const received = (await events(deps.log, botId)).filter((e) => e._tag === "UpdateReceived").map((e) => (e as { updateId: number }).updateId)
  expect(received).toEqual([fine.update_id, poison.update_id])
  expect(await repliesToPoison(deps.log, botId)).toBe(1)
  expect(await run(deps.inbox.readDeadLetters(botId))).toEqual([])
}

describe("dlq retry --bot on the Redis inbox (production mode)", () => {
  let log: EventLogService
  let inbox: InboxService
  let env: Record<string, string>
  let cleanup: () => Promise<void>
  beforeAll(async () => {
    const redis = createTestPrefix("dlq-inbox")
    const db = await createTestDatabase("dlq_inbox")
    log = await run(makeRedisEventLog({ url: redis.url, prefix: redis.prefix, partitions: PARTITIONS }))
    inbox = makeRedisInbox({ url: redis.url, prefix: redis.prefix, partitions: PARTITIONS })
    env = {
      DATABASE_URL: db.url,
      REDIS_URL: redis.url,
      REDIS_PREFIX: redis.prefix,
      PARTITIONS: String(PARTITIONS),
      BOTFLEET_SECRET_KEY: Buffer.alloc(32, 7).toString("base64"),
      LOG_LEVEL: "warning"
    }
    cleanup = async () => {
      await run(inbox.close)
      await run(log.close)
      await redis.cleanup()
      await db.drop()
    }
  })
  afterAll(() => cleanup())
  const cli = (...argv: Array<string>) => captureCli(env, argv)

  it("re-enqueues a dead-lettered update after the fix: handled once, one reply; a second retry enqueues nothing", async () => {
    await register(log, "shop")
    const snapshots = makeMemorySnapshotStore()
    const bot = await startActor({ log, inbox, snapshots }, "shop")
    try {
      const entryId = await deadLetterPoison({ log, inbox }, "shop", bot.actor)

      const listed = await cli("dlq", "list", "--bot", "shop", "--json")
      expect(listed.code).toBe(0)
      expect(JSON.parse(listed.out)).toMatchObject([{ botId: "shop", entryId, updateId: 41, reason: "TypeError: cannot read 'boom'" }])

      const res = await cli("dlq", "retry", "--bot", "shop", entryId, "--json")
      expect(res.err).toBe("")
      expect(res.code).toBe(0)
      const { retried } = JSON.parse(res.out) as { retried: Array<{ entryId: string; updateId: number; requeuedAs: string }> }
      expect(retried).toMatchObject([{ botId: "shop", entryId, updateId: 41 }])
      await until(async () => bot.actor.status().updatesHandled === 2)

      const again = await cli("dlq", "retry", "--bot", "shop", entryId)
      expect(again.code).toBe(1)
      expect(again.err).toContain(`bot shop has no inbox dead letter ${entryId}`)
      expect(await cli("dlq", "retry", "--bot", "shop", "--all")).toMatchObject({ code: 0, out: "no inbox dead letters for bot shop" })
      expect(await cli("dlq", "list", "--bot", "shop")).toMatchObject({ code: 0, out: "no inbox dead letters for bot shop" })
      // the actor is past the requeued entry and nothing more waits for it
      await until(async () => (await run(inbox.lag("shop", bot.actor.status().inboxCursor))) === 0)
      expect((await bot.actor.send({ _tag: "Status" })).duplicatesDropped).toBe(0)
      await expectHandledOnce({ log, inbox }, "shop")
    } finally {
      await bot.stop()
      await run(snapshots.close)
    }
  })

  it("refuses bad selections with a clear error and changes nothing", async () => {
    await register(log, "quiet")
    await run(inbox.deadLetter("quiet", { id: "5-0", update: { update_id: 5 }, receivedAt: new Date().toISOString() }, "Error: x"))
    const unknownBot = await cli("dlq", "retry", "--bot", "nobody", "--all")
    expect(unknownBot.code).toBe(1)
    expect(unknownBot.err).toContain("bot nobody is not registered")
    const unknownEntry = await cli("dlq", "retry", "--bot", "quiet", "9-0")
    expect(unknownEntry.code).toBe(1)
    expect(unknownEntry.err).toContain("bot quiet has no inbox dead letter 9-0")
    expect((await cli("dlq", "retry", "--bot", "quiet", "not-an-id")).code).toBe(2)
    expect((await cli("dlq", "retry", "--bot", "quiet")).code).toBe(2)
    expect((await cli("dlq", "retry", "--bot", "quiet", "5-0", "--all")).code).toBe(2)
    expect((await cli("dlq", "retry", "--bot", "quiet", "5-0", "6-0")).code).toBe(2)
    expect(await run(inbox.readAfter("quiet", null, 10))).toEqual([])
    expect(await run(inbox.readDeadLetters("quiet"))).toHaveLength(1)

    const all = await cli("dlq", "retry", "--bot", "quiet", "--all")
    expect(all).toMatchObject({ code: 0 })
    expect(all.out).toContain("re-enqueued 1 inbox dead letter of bot quiet")
    expect((await run(inbox.readAfter("quiet", null, 10))).map((e) => e.update)).toEqual([{ update_id: 5 }])
  })
})

describe("dlq retry --bot on the Postgres inbox (Postgres server)", () => {
  const sql = useMigratedDatabase("dlq_inbox_pg")

  it("re-enqueues a dead-lettered update after the fix: handled once, one reply; a second retry enqueues nothing", async () => {
    const log = makePostgresEventLog({ sql: sql(), partitions: PARTITIONS })
    const inbox = makePostgresInbox({ sql: sql(), pollMs: 50 })
    await register(log, "shop")
    const bot = await startActor({ log, inbox, snapshots: makePostgresSnapshotStore(sql()) }, "shop")
    try {
      const entryId = await deadLetterPoison({ log, inbox }, "shop", bot.actor)
      const retried = await run(retryInboxDeadLetters({ log, inbox, botId: "shop", entryId }))
      expect(retried).toMatchObject([{ entryId, updateId: 41 }])
      await until(async () => bot.actor.status().updatesHandled === 2)
      const second = await run(Effect.flip(retryInboxDeadLetters({ log, inbox, botId: "shop", entryId })))
      expect(second._tag).toBe("InboxDeadLetterNotFound")
      expect(await run(retryInboxDeadLetters({ log, inbox, botId: "shop", entryId: null }))).toEqual([])
      await until(async () => (await run(inbox.lag("shop", bot.actor.status().inboxCursor))) === 0)
      await expectHandledOnce({ log, inbox }, "shop")
    } finally {
      await bot.stop()
      await run(inbox.close)
      await run(log.close)
    }
  })

  it("re-enqueues once when two retries of the same entry race", async () => {
    const log = makePostgresEventLog({ sql: sql(), partitions: PARTITIONS })
    const inbox = makePostgresInbox({ sql: sql(), pollMs: 50 })
    await run(inbox.deadLetter("race", { id: "3-0", update: { update_id: 3 }, receivedAt: new Date().toISOString() }, "Error: x"))
    const ids = await Promise.all([run(inbox.retryDeadLetter("race", "3-0")), run(inbox.retryDeadLetter("race", "3-0"))])
    expect(ids.filter((id) => id !== null)).toHaveLength(1)
    expect(await run(inbox.readAfter("race", null, 10))).toHaveLength(1)
    await run(inbox.close)
    await run(log.close)
  })
})

describe("dlq retry --bot in embedded mode (PGlite under DATA_DIR)", () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "bf-dlq-inbox-"))
  })
  afterAll(() => rm(dir, { recursive: true, force: true }))

  /** The fleet runs on the folder while `body` runs, and is stopped for the CLI (one process per folder). */
  const withFleet = async <A>(body: (deps: { log: EventLogService; inbox: InboxService; actor: BotActor }) => Promise<A>): Promise<A> => {
    const sql = await makePgliteSql({ dataDir: join(dir, "pglite") })
    await migrate(sql)
    const log = makePostgresEventLog({ sql, partitions: PARTITIONS })
    const inbox = makePostgresInbox({ sql, pollMs: 50 })
    try {
      if ((await run(log.streamVersion("shop"))) === 0) await register(log, "shop")
      const bot = await startActor({ log, inbox, snapshots: makePostgresSnapshotStore(sql) }, "shop")
      try {
        return await body({ log, inbox, actor: bot.actor })
      } finally {
        await bot.stop()
      }
    } finally {
      await run(inbox.close)
      await run(log.close)
      await sql.close()
    }
  }
  const cli = (...argv: Array<string>) => captureCli({ DATA_DIR: dir, PARTITIONS: String(PARTITIONS), LOG_LEVEL: "warning" }, argv)

  it("re-enqueues a dead-lettered update after the fix: handled once, one reply; a second retry enqueues nothing", async () => {
    const entryId = await withFleet((deps) => deadLetterPoison(deps, "shop", deps.actor))

    const listed = await cli("dlq", "list", "--bot", "shop")
    expect(listed.code).toBe(0)
    expect(listed.out).toContain(entryId)
    const res = await cli("dlq", "retry", "--bot", "shop", entryId)
    expect(res.err).toBe("")
    expect(res.code).toBe(0)
    expect(res.out).toContain("re-enqueued 1 inbox dead letter of bot shop")
    expect((await cli("dlq", "retry", "--bot", "shop", entryId)).code).toBe(1)

    await withFleet(async (deps) => {
      await until(async () => deps.actor.status().updatesHandled === 2)
      await until(async () => (await run(deps.inbox.lag("shop", deps.actor.status().inboxCursor))) === 0)
      await expectHandledOnce(deps, "shop")
    })
  })
})
