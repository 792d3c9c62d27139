import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { makeRedisInbox } from "../../src/actors/redisInbox.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import { processHealth } from "../../src/health/processHealth.js"
import { captureDependencyLogs } from "../support/captureLogs.js"
import { startPrivateRedis } from "../support/privateServers.js"
import type { PrivateRedis } from "../support/privateServers.js"

/*
 * ioredis clients of the log and the inboxes across a Redis restart: no raw "[ioredis] Unhandled
 * error event" lines, one structured line per client group down and one back, commands that fail
 * while it is down fail as the port's *Unavailable error, and everything works again after.
 * A private redis-server (AOF, appendfsync always), since the test kills it.
 */

let server: PrivateRedis
const logs = captureDependencyLogs()
const redisUp = () => processHealth.dependencies().find((d) => d.dependency === "redis")?.up !== false

const until = async (cond: () => boolean | Promise<boolean>, ms = 30_000) => {
  const end = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not met in time")
    await new Promise((r) => setTimeout(r, 50))
  }
}

beforeAll(async () => {
  server = await startPrivateRedis({ aof: true })
})
afterAll(async () => {
  logs.stop()
  await server.remove()
})

describe("Redis clients across a restart", () => {
  it("log structured down/back lines instead of raw ioredis errors, fail typed while down, and work again after", async () => {
    const consoleError = vi.spyOn(console, "error")
    const log = await Effect.runPromise(makeRedisEventLog({ url: server.url, prefix: "rh", partitions: 2 }))
    const inbox = makeRedisInbox({ url: server.url, prefix: "rh", partitions: 2 })
    try {
      await Effect.runPromise(inbox.enqueue("bot-a", { update_id: 1 }))
      // a blocking read holds a connection of its own (the log's blocking pool)
      const blocked = Effect.runPromise(Effect.either(log.readGroup({ partition: 0, group: "g", consumer: "c", count: 1, blockMs: 60_000 })))
      await Effect.runPromise(log.ensureGroup(0, "g", "start"))
      const waiting = Effect.runPromise(Effect.either(inbox.waitFor("bot-b", null, 60_000)))
      await new Promise((r) => setTimeout(r, 300))

      await server.kill()
      const failed = await Effect.runPromise(Effect.either(inbox.enqueue("bot-a", { update_id: 2 })))
      expect(failed._tag === "Left" && failed.left._tag).toBe("InboxUnavailable")
      const lease = await Effect.runPromise(Effect.either(log.acquireLease("bot-a", "n1", 1000)))
      expect(lease._tag === "Left" && lease.left._tag).toBe("LogUnavailable")
      await until(() => !redisUp())
      // ioredis keeps retrying for a while: let it fail many times
      await new Promise((r) => setTimeout(r, 2500))

      await server.start()
      await until(redisUp)
      expect((await Effect.runPromise(inbox.readAfter("bot-a", null, 10))).map((e) => e.update)).toEqual([{ update_id: 1 }])
      await Effect.runPromise(inbox.enqueue("bot-b", { update_id: 3 }))
      expect(await Effect.runPromise(log.acquireLease("bot-a", "n1", 1000))).not.toBeNull()
      // the blocking read failed as the log's own error, and the waiter was woken (it reads again)
      expect(await blocked).toMatchObject({ _tag: "Left", left: { _tag: "LogUnavailable" } })
      expect((await waiting)._tag).toBe("Right")

      const messages = logs.lines.filter((l) => l["dependency"] === "redis")
      const byClient = new Map<string, string[]>()
      for (const l of messages) byClient.set(String(l["client"]), [...(byClient.get(String(l["client"])) ?? []), String(l["message"])])
      expect(byClient.size).toBeGreaterThanOrEqual(2)
      for (const [, seq] of byClient) expect(seq).toEqual(["redis unreachable", "redis back"])
      for (const l of messages) {
        expect(l["address"]).toBe(`127.0.0.1:${server.port}`)
        expect(JSON.stringify(l)).not.toMatch(/password/i)
      }
      expect(consoleError.mock.calls.filter((c) => String(c[0]).includes("[ioredis]"))).toEqual([])
    } finally {
      consoleError.mockRestore()
      await Effect.runPromise(inbox.close)
      await Effect.runPromise(log.close)
    }
  }, 60_000)
})
