import { Effect, LogLevel } from "effect"
import { describe, expect, it } from "vitest"
import { jsonLoggerLayer } from "../../src/logging.js"
import { makeProjectionPauses } from "../../src/projections/pauses.js"

const capture = (program: Effect.Effect<void>) => {
  const lines: Array<Record<string, unknown>> = []
  Effect.runSync(program.pipe(Effect.provide(jsonLoggerLayer({ level: LogLevel.Info, write: (l) => lines.push(JSON.parse(l)) }))))
  return lines
}

describe("projection pauses in the log", () => {
  it("an outage seen by every partition, many times, is one 'paused' line and one 'resumed' line", () => {
    const pauses = makeProjectionPauses()
    const error = { message: "postgres at db:5432/x unavailable (shutting-down): terminating connection" }
    const lines = capture(
      Effect.gen(function* () {
        for (let round = 0; round < 5; round++) for (let p = 0; p < 16; p++) yield* pauses.failed(p, error)
        expect(pauses.paused()).toHaveLength(16)
        for (let p = 0; p < 15; p++) yield* pauses.succeeded(p)
        expect(pauses.paused()).toEqual([15])
        yield* pauses.succeeded(15)
        // a partition that was never paused says nothing
        yield* pauses.succeeded(3)
      })
    )
    expect(lines.map((l) => [l["level"], l["message"]])).toEqual([
      ["warn", `projections paused: ${error.message}`],
      ["info", "projections resumed"]
    ])
    expect(lines[1]).toMatchObject({ failedTries: 80 })
  })
})
