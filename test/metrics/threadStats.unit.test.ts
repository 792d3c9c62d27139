import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import {
  absorbThreadStats,
  MAX_SAMPLES,
  methodLabel,
  recordAppend,
  recordCall,
  recordDeadLetter,
  recordRateLimited,
  recordStoreError,
  recordWait,
  refusedResult,
  setThreadStatsSink,
  takeThreadStats,
  ThreadStats
} from "../../src/metrics/threadStats.js"
import type { ThreadStatsSink } from "../../src/metrics/threadStats.js"

/*
 * A worker thread's side: no registry here, so measurements gather until the heartbeat takes
 * them; the main thread's side replays them into its sink.
 */

const recordingSink = () => {
  const seen: Array<[string, ...unknown[]]> = []
  const sink: ThreadStatsSink = {
    appendLatency: (s) => void seen.push(["appendLatency", s]),
    appends: (o, n) => void seen.push(["appends", o, n]),
    call: (m, r, n) => void seen.push(["call", m, r, n]),
    rateLimited: (n) => void seen.push(["rateLimited", n]),
    waited: (r, s) => void seen.push(["waited", r, s]),
    deadLettered: (src, n) => void seen.push(["deadLettered", src, n]),
    storeError: (st, op, n) => void seen.push(["storeError", st, op, n]),
    dropped: (n) => void seen.push(["dropped", n])
  }
  return { sink, seen }
}

describe("thread measurements (worker side: gathered for the heartbeat)", () => {
  it("gathers what happened since the last take, as plain data the heartbeat schema accepts, then starts over", () => {
    expect(takeThreadStats()).toBeNull()
    recordAppend(0.002, "ok")
    recordAppend(0.004, "conflict")
    recordCall("sendMessage", "ok")
    recordCall("sendMessage", refusedResult(429))
    recordRateLimited()
    recordWait("retry_after", 3000)
    recordWait("limit", 0)
    recordDeadLetter("inbox")
    recordStoreError("redis", "readAfter")
    const taken = takeThreadStats()
    expect(taken).toEqual({
      appendSeconds: [0.002, 0.004],
      appends: { ok: 1, conflict: 1 },
      calls: { "sendMessage/ok": 1, "sendMessage/429": 1 },
      rateLimited: 1,
      waits: { retry_after: 3 },
      deadLetters: { inbox: 1 },
      storeErrors: { "redis/readAfter": 1 },
      dropped: 0
    })
    // what crosses the thread boundary decodes with the heartbeat's schema
    expect(Schema.decodeUnknownSync(ThreadStats)(structuredClone(taken))).toEqual(taken)
    expect(takeThreadStats()).toBeNull()
  })

  it("stays bounded between heartbeats: latency samples past MAX_SAMPLES are counted as dropped, method names past the key budget as other", () => {
    for (let i = 0; i < MAX_SAMPLES + 5; i++) recordAppend(0.001, "ok")
    for (let i = 0; i < 250; i++) recordCall(`method${i}`, "ok")
    const taken = takeThreadStats()!
    expect(taken.appendSeconds).toHaveLength(MAX_SAMPLES)
    expect(taken.dropped).toBe(5)
    expect(taken.appends["ok"]).toBe(MAX_SAMPLES + 5)
    expect(Object.keys(taken.calls)).toHaveLength(201)
    expect(taken.calls["other"]).toBe(50)
  })

  it("labels methods and refusals with bounded values", () => {
    expect(methodLabel("sendMessage")).toBe("sendMessage")
    expect(methodLabel("../../etc/passwd")).toBe("other")
    expect(methodLabel("x".repeat(65))).toBe("other")
    expect([400, 401, 403, 404, 409, 429, 418, 502, 0].map(refusedResult)).toEqual(["400", "401", "403", "404", "409", "429", "4xx", "5xx", "error"])
  })

  it("replays a thread's measurements into the main thread's sink, and hands a late sink what was gathered before it", () => {
    recordAppend(0.01, "stale_fence")
    const fromWorker = takeThreadStats()!
    // no sink yet: absorbed measurements wait
    absorbThreadStats(fromWorker)
    recordWait("backoff", 500)
    const { sink, seen } = recordingSink()
    setThreadStatsSink(sink)
    try {
      expect(seen).toEqual(expect.arrayContaining([["appendLatency", 0.01], ["appends", "stale_fence", 1], ["waited", "backoff", 0.5]]))
      seen.length = 0
      absorbThreadStats({ ...fromWorker, calls: { "getMe/ok": 2 }, rateLimited: 3, dropped: 1, storeErrors: { "postgres/query": 1 }, deadLetters: { log: 2 } })
      expect(seen).toEqual([
        ["appendLatency", 0.01],
        ["dropped", 1],
        ["appends", "stale_fence", 1],
        ["call", "getMe", "ok", 2],
        ["rateLimited", 3],
        ["deadLettered", "log", 2],
        ["storeError", "postgres", "query", 1]
      ])
      // with a sink, measurements go straight to it
      seen.length = 0
      recordCall("sendPhoto", "unknown")
      expect(seen).toEqual([["call", "sendPhoto", "unknown", 1]])
      expect(takeThreadStats()).toBeNull()
    } finally {
      setThreadStatsSink(null)
    }
  })
})
