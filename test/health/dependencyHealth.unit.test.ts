import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { errorLine, makeDependencyHealth } from "../../src/health/dependencyHealth.js"
import type { ClientKey, HealthTransition } from "../../src/health/dependencyHealth.js"

const redisLog: ClientKey = { dependency: "redis", client: "log", address: "10.0.0.5:6379", thread: 0 }
const pgPool: ClientKey = { dependency: "postgres", client: "pool botfleet-n1", address: "db:5432/botfleet", thread: 0 }

const recorder = () => {
  let now = 1_000
  const transitions: HealthTransition[] = []
  const health = makeDependencyHealth({ now: () => now, onTransition: (t) => transitions.push(t) })
  return { health, transitions, tick: (ms: number) => (now += ms) }
}

describe("dependency health record", () => {
  it("says once that a group went down and once that it is back, however many errors came between", () => {
    const { health, transitions, tick } = recorder()
    health.up(redisLog, "a")
    for (let i = 0; i < 500; i++) health.down(redisLog, "a", Object.assign(new Error("connect ECONNREFUSED 10.0.0.5:6379"), { code: "ECONNREFUSED" }))
    tick(4_000)
    health.up(redisLog, "a")
    expect(transitions).toEqual([
      { _tag: "Down", key: redisLog, at: new Date(1_000).toISOString(), error: "connect ECONNREFUSED 10.0.0.5:6379" },
      { _tag: "Back", key: redisLog, at: new Date(5_000).toISOString(), downForMs: 4_000, errors: 500 }
    ])
  })

  it("keeps a group down until every connection of it that failed is ready again", () => {
    const { health, transitions } = recorder()
    const blocking = { ...redisLog, client: "log-blocking-reads" }
    health.down(blocking, "c1", new Error("connection lost"))
    health.down(blocking, "c2", new Error("connection lost"))
    health.up(blocking, "c1")
    expect(health.dependencies()).toMatchObject([{ dependency: "redis", up: false }])
    health.up(blocking, "c2")
    expect(transitions.map((t) => t._tag)).toEqual(["Down", "Back"])
    expect(health.dependencies()).toMatchObject([{ dependency: "redis", up: true, downSince: null }])
  })

  it("reports each store as a whole: down since the earliest group, with the last error", () => {
    const { health, tick } = recorder()
    health.up(pgPool, "p")
    health.down(redisLog, "a", new Error("first"))
    tick(500)
    health.down({ ...redisLog, client: "inbox" }, "b", new Error("second"))
    const [pgState, redisState] = health.dependencies()
    expect(pgState).toMatchObject({ dependency: "postgres", up: true })
    expect(redisState).toMatchObject({ dependency: "redis", up: false, downSince: new Date(1_000).toISOString() })
    expect(redisState!.clients.filter((c) => !c.up).map((c) => c.client).sort()).toEqual(["inbox", "log"])
  })

  it("forgets a connection closed on purpose; a group left with none disappears without a 'back'", () => {
    const { health, transitions } = recorder()
    health.down(redisLog, "a", new Error("x"))
    health.gone(redisLog, "a")
    expect(health.clients()).toEqual([])
    expect(transitions.map((t) => t._tag)).toEqual(["Down"])
    // a closed connection of a group whose others are fine: the group is back
    health.down(pgPool, "p1", new Error("x"))
    health.up(pgPool, "p2")
    health.gone(pgPool, "p1")
    expect(transitions.map((t) => t._tag)).toEqual(["Down", "Down", "Back"])
  })

  it("takes another thread's transitions as they are (the main thread's record covers the workers)", () => {
    const main = makeDependencyHealth()
    const worker = { ...redisLog, thread: 3 }
    main.apply({ _tag: "Down", key: worker, at: "2026-12-01T10:00:00.000Z", error: "ECONNRESET read" })
    expect(main.dependencies()).toMatchObject([{ dependency: "redis", up: false, downSince: "2026-12-01T10:00:00.000Z", lastError: "ECONNRESET read" }])
    main.apply({ _tag: "Back", key: worker, at: "2026-12-01T10:00:05.000Z", downForMs: 5000, errors: 3 })
    expect(main.dependencies()).toMatchObject([{ dependency: "redis", up: true }])
  })

  it("whatever the order of events: never a 'back' without a 'down' before it, and the record ends as the last events say", () => {
    const event = fc.record({ member: fc.constantFrom("a", "b", "c"), kind: fc.constantFrom("down", "up", "gone") })
    fc.assert(
      fc.property(fc.array(event, { maxLength: 60 }), (events) => {
        const { health, transitions } = recorder()
        const state = new Map<string, boolean>()
        for (const e of events) {
          if (e.kind === "down") health.down(redisLog, e.member, new Error("x"))
          else if (e.kind === "up") health.up(redisLog, e.member)
          else health.gone(redisLog, e.member)
          if (e.kind === "gone") state.delete(e.member)
          else state.set(e.member, e.kind === "up")
        }
        let outstanding = 0
        for (const t of transitions) {
          outstanding += t._tag === "Down" ? 1 : -1
          expect(outstanding).toBeGreaterThanOrEqual(0)
        }
        expect(transitions.filter((t) => t._tag === "Down").length).toBeLessThanOrEqual(events.filter((e) => e.kind === "down").length)
        const anyDown = [...state.values()].some((up) => !up)
        const client = health.clients()[0]
        if (state.size === 0) expect(client).toBeUndefined()
        else expect(client?.up).toBe(!anyDown)
      }),
      { numRuns: 500 }
    )
  })

  it("prints an error as one line: its code when the message lacks it, never an object dump", () => {
    expect(errorLine(Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" }))).toBe(
      "57P01 terminating connection due to administrator command"
    )
    expect(errorLine(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }))).toBe("connect ECONNREFUSED 127.0.0.1:1")
    expect(errorLine("plain")).toBe("plain")
  })
})

describe("a worker thread that ended", () => {
  it("leaves the record with its connections, even those last seen down", () => {
    const health = makeDependencyHealth()
    health.apply({ _tag: "Down", key: { ...redisLog, thread: 4 }, at: "2026-12-01T10:00:00.000Z", error: "x" })
    health.up({ ...redisLog, thread: 5 }, "m")
    health.forgetThread(4)
    expect(health.clients().map((c) => c.thread)).toEqual([5])
    expect(health.dependencies()).toMatchObject([{ dependency: "redis", up: true }])
  })
})
