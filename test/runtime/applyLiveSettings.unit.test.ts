import { Effect, LogLevel } from "effect"
import { describe, expect, it } from "vitest"
import type { Supervisor, SupervisorTuning } from "../../src/actors/supervisor.js"
import { loadConfig } from "../../src/config.js"
import { applyLiveSettings } from "../../src/runtime/applyLiveSettings.js"
import { makeLiveSettings } from "../../src/runtime/liveSettings.js"
import type { SendLimits } from "../../src/telegram/limits.pure.js"

const key = Buffer.alloc(32, 7).toString("base64")

/** A supervisor that only takes `tune`: any other call fails the test. */
const tuningOnly = (calls: Array<SupervisorTuning>): Supervisor =>
  new Proxy({} as Supervisor, {
    get: (_t, prop) => {
      if (prop === "tune") return (t: SupervisorTuning) => Effect.sync(() => void calls.push(t))
      throw new Error(`the supervisor's ${String(prop)} was not expected here`)
    }
  })

describe("applyLiveSettings", () => {
  it("hands each changed setting to what reads it, and nothing else", async () => {
    const settings = makeLiveSettings(await Effect.runPromise(loadConfig({ BOTFLEET_SECRET_KEY: key, LOG_LEVEL: "info" })))
    const tuned: Array<SupervisorTuning> = []
    const limits: Array<SendLimits> = []
    const logLevel = { level: LogLevel.Info }
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          yield* applyLiveSettings({ settings, supervisor: tuningOnly(tuned), setSendLimits: (l) => void limits.push(l), logLevel })
          yield* settings.set("LOG_LEVEL", "error")
          expect(logLevel.level).toBe(LogLevel.Error)
          expect([tuned, limits]).toEqual([[], []])
          yield* settings.set("MAX_RESIDENT_BOTS", "10")
          expect(tuned).toEqual([{ activationsPerSecond: 200, passivateAfterMs: 300_000, maxResident: 10 }])
          yield* settings.set("SEND_LIMIT_PER_GROUP", "5")
          expect(limits).toEqual([{ perBot: { rate: 30, perMs: 1000, burst: 30 }, perChat: { rate: 1, perMs: 1000, burst: 3 }, perGroup: { rate: 5, perMs: 60_000, burst: 5 } }])
          yield* settings.set("BACKUP_KEEP", "3")
          expect([tuned.length, limits.length]).toEqual([1, 1])
        })
      )
    )
    // unsubscribed with the scope
    await Effect.runPromise(settings.set("LOG_LEVEL", "debug"))
    expect(logLevel.level).toBe(LogLevel.Error)
  })
})
