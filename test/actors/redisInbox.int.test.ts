import { Effect } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { makeRedisInbox } from "../../src/actors/redisInbox.js"
import { createTestPrefix } from "../support/redis.js"
import { run } from "./support.js"

describe("Redis inbox", () => {
  const { prefix, url, cleanup } = createTestPrefix("inbox")
  const inbox = makeRedisInbox({ url, prefix, partitions: 4 })
  afterAll(async () => {
    await run(inbox.close)
    await cleanup()
  })

  it("keeps a bot's updates in order, reads after a cursor, counts lag and trims what was handled", async () => {
    const ids = []
    for (let i = 1; i <= 5; i++) ids.push(await run(inbox.enqueue("a", { update_id: i })))
    const all = await run(inbox.readAfter("a", null, 10))
    expect(all.map((e) => (e.update as { update_id: number }).update_id)).toEqual([1, 2, 3, 4, 5])
    expect(all.map((e) => e.id)).toEqual(ids)
    expect(Date.parse(all[0]!.receivedAt)).not.toBeNaN()
    expect((await run(inbox.readAfter("a", ids[2]!, 10))).map((e) => e.id)).toEqual(ids.slice(3))
    expect(await run(inbox.lag("a", ids[1]!))).toBe(3)
    await run(inbox.trim("a", ids[2]!))
    expect((await run(inbox.readAfter("a", null, 10))).map((e) => e.id)).toEqual(ids.slice(3))
  })

  it("refuses an update without an integer update_id, storing nothing", async () => {
    const r = await run(Effect.either(inbox.enqueue("b", { text: "no id" })))
    expect(r._tag === "Left" && r.left._tag).toBe("InvalidUpdate")
    expect(await run(inbox.readAfter("b", null, 10))).toEqual([])
  })

  it("wakes each waiting bot with its own new entries, many bots sharing one blocking reader", async () => {
    const bots = Array.from({ length: 50 }, (_, i) => `w${i}`)
    const waits = bots.map((b) => run(inbox.waitFor(b, null, 10_000, 8)))
    await new Promise((r) => setTimeout(r, 50))
    for (const [i, b] of bots.entries()) await run(inbox.enqueue(b, { update_id: 1000 + i }))
    const got = await Promise.all(waits)
    got.forEach((entries, i) => {
      // a waiter may be woken with its entries, or only hinted (then it reads): never someone else's
      if (Array.isArray(entries)) expect(entries.map((e) => (e.update as { update_id: number }).update_id)).toEqual([1000 + i])
    })
    expect(got.filter(Array.isArray).length).toBeGreaterThan(0)
  })

  it("keeps dead letters with their reason", async () => {
    const id = await run(inbox.enqueue("d", { update_id: 7 }))
    const [entry] = await run(inbox.readAfter("d", null, 1))
    await run(inbox.deadLetter("d", entry!, "TypeError: nope"))
    expect(await run(inbox.readDeadLetters("d"))).toMatchObject([{ entryId: id, reason: "TypeError: nope", update: { update_id: 7 } }])
  })
})
