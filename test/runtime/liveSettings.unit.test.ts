import { Effect, Either, LogLevel } from "effect"
import { describe, expect, it } from "vitest"
import { loadConfig } from "../../src/config.js"
import { makeLiveSettings } from "../../src/runtime/liveSettings.js"

const key = Buffer.alloc(32, 7).toString("base64")
const start = (env: Record<string, string>) => Effect.runPromise(loadConfig({ BOTFLEET_SECRET_KEY: key, ...env }))

describe("live settings", () => {
  it("validates a change as at start-up, tells subscribers, and goes back to the start value", async () => {
    const live = makeLiveSettings(await start({ LOG_LEVEL: "info", SEND_LIMIT_PER_CHAT: "2" }))
    const seen: Array<string> = []
    const off = live.subscribe((c) => seen.push(c.logLevel.label))
    expect(await Effect.runPromise(live.set("LOG_LEVEL", "debug"))).toEqual({ name: "LOG_LEVEL", old: "INFO", value: "DEBUG", source: "live" })
    expect(live.current().logLevel).toBe(LogLevel.Debug)
    expect(live.describe().find((s) => s.name === "LOG_LEVEL")).toEqual({ name: "LOG_LEVEL", value: "DEBUG", source: "live", live: true })
    expect(await Effect.runPromise(live.set("LOG_LEVEL", null))).toMatchObject({ value: "INFO", source: "env" })
    off()
    await Effect.runPromise(live.set("SEND_LIMIT_PER_CHAT", "5"))
    expect(seen).toEqual(["DEBUG", "INFO"])
    expect(live.current().sendLimits.perChatPerSecond).toBe(5)
    expect(live.describe().find((s) => s.name === "PARTITIONS")).toEqual({ name: "PARTITIONS", value: "16", source: "default", live: false })
  })

  it("refuses unknown settings, settings that need a restart and bad values, changing nothing", async () => {
    const live = makeLiveSettings(await start({}))
    const refused = async (name: string, value: string) => {
      const r = await Effect.runPromise(Effect.either(live.set(name, value)))
      if (Either.isRight(r)) throw new Error("expected a refusal")
      return r.left
    }
    expect((await refused("PARTITIONS", "32")).reason).toBe("needs-restart")
    expect((await refused("WHATEVER", "1")).reason).toBe("unknown")
    const bad = await refused("MAX_RESIDENT_BOTS", "-1")
    expect(bad.message).toBe('MAX_RESIDENT_BOTS: expects an integer from 0 to 10000000 (0: no cap), got "-1"')
    expect(live.current().maxResidentBots).toBe(0)
    expect(live.describe().every((s) => s.source !== "live")).toBe(true)
  })
})
