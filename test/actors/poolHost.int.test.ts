import { randomBytes } from "node:crypto"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makePoolHost } from "../../src/actors/poolHost.js"
import type { ActorHost } from "../../src/actors/host.js"
import { makeRedisInbox } from "../../src/actors/redisInbox.js"
import type { InboxService } from "../../src/actors/inbox.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { createTestPrefix } from "../support/redis.js"

const run = Effect.runPromise
const text = (updateId: number, body: string) => ({
  update_id: updateId,
  message: { message_id: updateId, chat: { id: 1, type: "private" }, from: { id: 2 }, text: body }
})
const until = async (cond: () => Promise<boolean>, ms = 20_000) => {
  const end = Date.now() + ms
  while (Date.now() < end && !(await cond())) await new Promise((r) => setTimeout(r, 20))
  expect(await cond()).toBe(true)
}

describe("pool host (real worker threads, real Redis)", () => {
  const { prefix, url, cleanup } = createTestPrefix("poolhost")
  let log: EventLogService
  let inbox: InboxService
  let host: ActorHost
  beforeAll(async () => {
    log = await run(makeRedisEventLog({ url, prefix, partitions: 4 }))
    inbox = makeRedisInbox({ url, prefix, partitions: 4 })
    host = makePoolHost({
      threads: 2,
      botsPerThread: 10,
      setup: {
        module: new URL("../../src/actors/redisActorDeps.ts", import.meta.url).href,
        options: { url, prefix, partitions: 4, kindsModule: new URL("./fixtures/kinds.ts", import.meta.url).href }
      }
    })
  })
  afterAll(async () => {
    await host.close()
    await run(inbox.close)
    await run(log.close)
    await cleanup()
  })

  it("runs a bot on a worker: handles its inbox, takes commands over its port, drains on stop", async () => {
    const lease = (await run(log.acquireLease("p1", "n1", 60_000)))!
    const h = host.start({ botId: "p1", nodeId: "n1", fence: lease.fence, idleWaitMs: 200 })
    await h.started
    await run(inbox.enqueue("p1", text(1, "hello")))
    await until(async () => (await h.send({ _tag: "Status" })).updatesHandled === 1)
    expect((await h.send({ _tag: "ChangeConfig", patch: { tone: "dry" } })).config).toEqual({ tone: "dry" })
    await h.send({ _tag: "Stop", reason: "test" })
    const final = await h.done
    expect(final.status).toBe("stopped")
    const types = (await run(log.readStream("p1"))).map((e) => e.type)
    expect(types).toEqual(["BotStarted", "UpdateReceived", "MessageReceived", "ReplySent", "BotConfigChanged", "BotStopped"])
  })

  it("a thread that exits rejects every actor on it as a thread death", async () => {
    const token = randomBytes(6).toString("hex")
    const lease = (await run(log.acquireLease("p2", "n1", 60_000)))!
    const h = host.start({ botId: "p2", nodeId: "n1", fence: lease.fence, idleWaitMs: 200 })
    await h.started
    await run(inbox.enqueue("p2", text(1, `crash:exit:${token}`)))
    await expect(h.done).rejects.toMatchObject({ _tag: "ActorDied", where: "thread" })
    // restarted, it handles the same input once (the crash was transient)
    const again = host.start({ botId: "p2", nodeId: "n1", fence: lease.fence, idleWaitMs: 200 })
    await until(async () => (await again.send({ _tag: "Status" })).updatesHandled === 1)
    await again.send({ _tag: "Stop", reason: "test" })
    await again.done
  })
})
