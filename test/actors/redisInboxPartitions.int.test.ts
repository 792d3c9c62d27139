import { connect } from "node:net"
import { afterAll, describe, expect, it } from "vitest"
import { makeRedisInbox } from "../../src/actors/redisInbox.js"
import { partitionOf } from "../../src/events/partition.js"
import { createTestPrefix } from "../support/redis.js"
import { run, until } from "./support.js"

/*
 * The shared blocking reader of the Redis inbox, as Redis Cluster needs it: every XREAD names keys
 * of one partition (one hash tag, so one slot). What Redis really received is watched with
 * MONITOR on a connection of the test's own, keeping only commands on this suite's key prefix.
 * The connection is a plain socket: ioredis's monitor mode can take a monitored line for the
 * reply to MONITOR itself on a busy server ("Command queue state error").
 */

/** Calls `seen(args, source)` for every command Redis runs; returns the stop. */
const monitor = async (url: string, seen: (args: Array<string>, source: string) => void) => {
  const { hostname, port, username, password } = new URL(url)
  const socket = connect(Number(port || 6379), hostname)
  let buffer = ""
  let oks = 0
  socket.setEncoding("utf8")
  socket.on("data", (chunk: string) => {
    buffer += chunk
    let end: number
    while ((end = buffer.indexOf("\r\n")) >= 0) {
      // +<time> [<db> <source>] "arg" "arg" ...
      const line = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      if (line === "+OK") oks++
      const head = /^\+\d+\.\d+ \[\d+ (\S+)\] /.exec(line)
      if (head) seen([...line.slice(head[0].length).matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!), head[1]!)
    }
  })
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject))
  const auth = password ? `AUTH ${decodeURIComponent(username || "default")} ${decodeURIComponent(password)}\r\n` : ""
  socket.write(`${auth}MONITOR\r\n`)
  await until(() => oks === (auth ? 2 : 1)) // MONITOR's +OK (after AUTH's)
  return () => socket.destroy()
}

const PARTITIONS = 4
const botsOf = (partition: number, n: number, label: string) => {
  const bots: Array<string> = []
  for (let i = 0; bots.length < n; i++) if (partitionOf(`${label}${i}`, PARTITIONS) === partition) bots.push(`${label}${i}`)
  return bots
}
const updateIdOf = (entries: unknown) =>
  Array.isArray(entries) ? entries.map((e: { update: { update_id: number } }) => e.update.update_id) : entries

describe("Redis inbox readers per partition", () => {
  const { prefix, url, cleanup } = createTestPrefix("inboxparts")
  afterAll(cleanup)

  it("never names two partitions in one XREAD, uses one reader connection per partition, and wakes waiters of every partition", async () => {
    const xreads: Array<{ keys: Array<string>; source: string }> = []
    const stop = await monitor(url, (args, source) => {
      if (args[0]?.toLowerCase() !== "xread") return
      const at = args.findIndex((a) => a.toUpperCase() === "STREAMS")
      const names = args.slice(at + 1)
      const keys = names.slice(0, names.length / 2)
      if (keys.some((k) => k.startsWith(`${prefix}:`))) xreads.push({ keys, source })
    })
    const inbox = makeRedisInbox({ url, prefix, partitions: PARTITIONS })
    const tagOf = (key: string) => /\{(p\d+)\}/.exec(key)?.[1]
    try {
      // first wave: two bots in each of partitions 0, 1 and 2 wait; partition 3 has nobody
      const first = [0, 1, 2].flatMap((p) => botsOf(p, 2, `first-p${p}-`))
      const firstWaits = first.map((b) => run(inbox.waitFor(b, null, 30_000)))
      await until(() => new Set(xreads.flatMap((x) => x.keys.map(tagOf))).size === 3, 10_000)

      // second wave, while the three reads block: their readers must re-issue the read at once
      // (well inside the 2 s block) for these waits, shorter than the block, to end with entries
      const second = [0, 1, 2].map((p) => botsOf(p, 1, `second-p${p}-`)[0]!)
      const secondWaits = second.map((b) => run(inbox.waitFor(b, null, 1500)))
      await new Promise((r) => setTimeout(r, 20))
      for (const [i, b] of second.entries()) await run(inbox.enqueue(b, { update_id: 100 + i }))
      expect((await Promise.all(secondWaits)).map(updateIdOf)).toEqual([[100], [101], [102]])

      for (const [i, b] of first.entries()) await run(inbox.enqueue(b, { update_id: 200 + i }))
      expect((await Promise.all(firstWaits)).map(updateIdOf)).toEqual(first.map((_, i) => [200 + i]))
    } finally {
      await run(inbox.close)
      stop()
    }

    // every read named the keys of one partition only, and the second wave joined its partition's read
    expect(xreads.length).toBeGreaterThanOrEqual(6)
    for (const x of xreads) expect(new Set(x.keys.map(tagOf)).size, x.keys.join(" ")).toBe(1)
    const tags = new Set(xreads.map((x) => tagOf(x.keys[0]!)))
    expect([...tags].sort()).toEqual(["p00", "p01", "p02"])
    expect(xreads.some((x) => x.keys.some((k) => k.includes("second-")) && x.keys.some((k) => k.includes("first-")))).toBe(true)
    // idle bots do not cost a connection each: nine bots, three partitions, three reader connections
    expect(new Set(xreads.map((x) => x.source)).size).toBe(3)
  })
})
