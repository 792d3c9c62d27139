import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeRedisInbox } from "../../src/actors/redisInbox.js"

/*
 * The shared blocking reader of the Redis inbox across a reconnect of its connection. It runs on a
 * private redis-server (started here, on its own port), so the test can kill the reader's
 * connection without touching anyone else's.
 */

const run = Effect.runPromise
const port = 20_000 + Math.floor(Math.random() * 20_000)
const url = `redis://127.0.0.1:${port}`
let server: ChildProcess
let admin: Redis

const blockedXreadIds = async (): Promise<Array<number>> => {
  const list = (await admin.client("LIST")) as string
  return list
    .split("\n")
    .filter((l) => / cmd=xread /.test(l) && / flags=b /.test(l))
    .map((l) => Number(/^id=(\d+)/.exec(l)![1]))
}
const until = async (cond: () => Promise<boolean>) => {
  for (let i = 0; i < 400 && !(await cond()); i++) await new Promise((r) => setTimeout(r, 10))
  expect(await cond()).toBe(true)
}

beforeAll(async () => {
  server = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" })
  admin = new Redis(url, { lazyConnect: true, retryStrategy: (n) => (n > 100 ? null : 50) })
  admin.on("error", () => undefined) // refused while the server starts
  await until(async () => {
    try {
      if (admin.status !== "ready") await admin.connect()
      return (await admin.ping()) === "PONG"
    } catch {
      return false
    }
  })
})
afterAll(async () => {
  admin.disconnect()
  server.kill("SIGTERM")
})

describe("redis inbox reader after a reconnect", () => {
  it("re-issues its blocking read at once for a new waiter (unblocks the NEW connection, not the old one)", async () => {
    const inbox = makeRedisInbox({ url, prefix: "rc", partitions: 4 })
    try {
      // bot a waits: the reader blocks on a's inbox
      const a = run(inbox.waitFor("a", null, 30_000))
      await until(async () => (await blockedXreadIds()).length === 1)
      const [before] = await blockedXreadIds()
      // the reader's connection drops; ioredis reconnects and sends the blocking read again
      await admin.client("KILL", "ID", String(before))
      await until(async () => {
        const ids = await blockedXreadIds()
        return ids.length === 1 && ids[0] !== before
      })
      await new Promise((r) => setTimeout(r, 100))
      // bot e (a's partition, so a's reader) starts waiting: the reader must be unblocked to add
      // e's inbox to its read
      const b = run(inbox.waitFor("e", null, 800))
      await new Promise((r) => setTimeout(r, 20))
      await run(inbox.enqueue("e", { update_id: 1 }))
      const got = await b
      expect(got?.map((e) => e.update)).toEqual([{ update_id: 1 }])
      await run(inbox.enqueue("a", { update_id: 2 }))
      expect((await a)?.map((e) => e.update)).toEqual([{ update_id: 2 }])
    } finally {
      await run(inbox.close)
    }
  })
})
