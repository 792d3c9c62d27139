import { Effect, LogLevel } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { jsonLoggerLayer, LogLevelSwitch, REDACTED } from "../src/logging.js"

const token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"

/** Runs `program` with the JSON logger and returns the lines it printed. */
const capture = (program: Effect.Effect<void>, level = LogLevel.Info): Array<string> => {
  const lines: Array<string> = []
  Effect.runSync(program.pipe(Effect.provide(jsonLoggerLayer({ level, write: (l) => lines.push(l) }))))
  return lines
}

describe("JSON logger", () => {
  it("prints one JSON line with level, time, message and the annotations set by the caller", () => {
    const lines = capture(
      Effect.logInfo("reply sent").pipe(Effect.annotateLogs({ botId: "bot-1", correlationId: "c-9", version: 42 }))
    )
    expect(lines).toHaveLength(1)
    const line = JSON.parse(lines[0]!)
    expect(line).toMatchObject({ level: "info", message: "reply sent", botId: "bot-1", correlationId: "c-9", version: 42 })
    expect(new Date(line.time).toString()).not.toBe("Invalid Date")
  })

  it("drops lines below the configured level", () => {
    expect(capture(Effect.logDebug("noise"), LogLevel.Info)).toEqual([])
    expect(capture(Effect.logWarning("careful"), LogLevel.Info)).toHaveLength(1)
  })

  it("changes level while running through its switch (LOG_LEVEL is a live setting), for fibers forked before too", () => {
    const lines: Array<string> = []
    Effect.runSync(
      Effect.gen(function* () {
        const levels = yield* LogLevelSwitch
        yield* Effect.logDebug("hidden")
        levels.level = LogLevel.Debug
        yield* Effect.logDebug("shown")
        levels.level = LogLevel.Error
        yield* Effect.logWarning("hidden too")
      }).pipe(Effect.provide(jsonLoggerLayer({ level: LogLevel.Info, write: (l) => lines.push(l) })))
    )
    expect(lines.map((l) => JSON.parse(l).message)).toEqual(["shown"])
  })

  it("includes the cause of a failure, redacted", () => {
    const lines = capture(Effect.logError("call failed", new Error(`bad url https://api.telegram.org/bot${token}/getMe`)))
    const text = lines.join("\n")
    expect(text).not.toContain(token)
    expect(text).toContain("call failed")
  })

  it("never prints a bot token, wherever it appears in a message or an annotation", () => {
    const lines = capture(
      Effect.gen(function* () {
        yield* Effect.logInfo(`token is ${token}`)
        yield* Effect.logInfo("registered", { bot: { nested: [{ note: `see ${token}` }] } })
        yield* Effect.logWarning("calling", `https://api.telegram.org/bot${token}/sendMessage`).pipe(
          Effect.annotateLogs({ url: `https://api.telegram.org/bot${token}/sendMessage`, botToken: "anything", password: "hunter2" })
        )
        yield* Effect.logInfo("db").pipe(Effect.annotateLogs("databaseUrl", "postgres://app:s3cret@db/bf"))
        yield* Effect.logInfo("headers").pipe(Effect.annotateLogs("request", { headers: { Authorization: "Bearer abc" } }))
      })
    )
    const text = lines.join("\n")
    expect(lines).toHaveLength(5)
    for (const secret of [token, "hunter2", "s3cret", "Bearer abc", "anything"]) expect(text).not.toContain(secret)
    expect(text).toContain(REDACTED)
    expect(JSON.parse(lines[3]!).databaseUrl).toBe(`postgres://${REDACTED}@db/bf`)
  })

  it("redacts any generated bot token embedded in arbitrary text (property)", () => {
    const tokenArb = fc
      .tuple(fc.integer({ min: 100, max: 9_999_999_999 }), fc.stringMatching(/^[A-Za-z0-9_-]{35}$/))
      .map(([id, secret]) => `${id}:${secret}`)
    // sampled up front and logged in one run: one logger layer for all cases keeps this fast
    const cases = fc.sample(fc.tuple(tokenArb, fc.string(), fc.string()), 200)
    const lines = capture(
      Effect.forEach(cases, ([t, before, after]) => Effect.logInfo(before + t + after).pipe(Effect.annotateLogs("note", [after, t, before])), { discard: true })
    )
    expect(lines).toHaveLength(cases.length)
    cases.forEach(([t], i) => expect(lines[i]).not.toContain(t.split(":")[1]!))
  })

  it("survives values JSON cannot print (cycles, bigints)", () => {
    const cyclic: Record<string, unknown> = { n: 1n }
    cyclic["self"] = cyclic
    const line = JSON.parse(capture(Effect.logInfo("odd").pipe(Effect.annotateLogs("value", cyclic)))[0]!)
    expect(line.value).toEqual({ n: "1", self: "[circular]" })
  })
})
