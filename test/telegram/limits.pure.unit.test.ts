import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { TokenBuckets, bucketsFor, defaultSendLimits, isGroupChat, isSendingMethod, limitOfKey } from "../../src/telegram/limits.pure.js"

describe("send limits", () => {
  it("lets a private chat burst 3 messages, then 1 per second", () => {
    const b = new TokenBuckets()
    const keys = bucketsFor(defaultSendLimits, "bot", 42)
    expect([b.take(keys, 0), b.take(keys, 0), b.take(keys, 0)]).toEqual([0, 0, 0])
    expect(b.take(keys, 0)).toBe(1000)
    expect(b.take(keys, 500)).toBe(500)
    expect(b.take(keys, 1000)).toBe(0)
  })

  it("holds a group to 20 messages a minute", () => {
    const b = new TokenBuckets()
    const keys = bucketsFor(defaultSendLimits, "bot", -100123)
    for (let i = 0; i < 20; i++) expect(b.take(keys, 0)).toBe(0)
    expect(b.take(keys, 0)).toBe(3000)
  })

  it("never lets a bot exceed 30 messages in any second across many chats", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 500 }), fc.integer({ min: 0, max: 50 })), { minLength: 1, maxLength: 400 }), (sends) => {
        const b = new TokenBuckets()
        const sentAt: number[] = []
        let now = 0
        for (const [chat, gap] of sends) {
          now += gap
          // a sender waits as long as it is told, then sends
          let wait = b.take(bucketsFor(defaultSendLimits, "bot", chat), now)
          while (wait > 0) {
            now += wait
            wait = b.take(bucketsFor(defaultSendLimits, "bot", chat), now)
          }
          sentAt.push(now)
        }
        for (let i = 0; i < sentAt.length; i++) {
          const inWindow = sentAt.filter((t) => t >= sentAt[i]! && t < sentAt[i]! + 1000).length
          // a full bucket (30) plus what refills within the window (30/s)
          expect(inWindow).toBeLessThanOrEqual(60)
        }
      })
    )
  })

  it("does not use up the bot's allowance for a send held back by its chat", () => {
    const b = new TokenBuckets()
    const limits = { ...defaultSendLimits, perBot: { rate: 2, perMs: 1000, burst: 2 }, perChat: { rate: 1, perMs: 1000, burst: 1 } }
    expect(b.take(bucketsFor(limits, "bot", 1), 0)).toBe(0)
    for (let i = 0; i < 5; i++) expect(b.take(bucketsFor(limits, "bot", 1), 0)).toBe(1000)
    expect(b.take(bucketsFor(limits, "bot", 2), 0)).toBe(0)
  })

  it("keeps bots apart and forgets idle buckets", () => {
    const b = new TokenBuckets()
    for (let i = 0; i < 30; i++) b.take(bucketsFor(defaultSendLimits, "a", i + 1), 0)
    expect(b.take(bucketsFor(defaultSendLimits, "a", 99), 0)).toBeGreaterThan(0)
    expect(b.take(bucketsFor(defaultSendLimits, "b", 99), 0)).toBe(0)
    const before = b.size
    expect(b.sweep(120_000, limitOfKey(defaultSendLimits))).toBe(before)
    expect(b.size).toBe(0)
  })

  it("knows group chats and sending methods", () => {
    expect(isGroupChat(-100)).toBe(true)
    expect(isGroupChat(5)).toBe(false)
    expect(isGroupChat("@channel")).toBe(true)
    expect(isSendingMethod("sendMessage")).toBe(true)
    expect(isSendingMethod("sendPhoto")).toBe(true)
    expect(isSendingMethod("copyMessage")).toBe(true)
    expect(isSendingMethod("sendChatAction")).toBe(false)
    expect(isSendingMethod("getMe")).toBe(false)
  })
})
