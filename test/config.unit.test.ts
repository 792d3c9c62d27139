import { Effect, Either, LogLevel, Option, Redacted } from "effect"
import { describe, expect, it } from "vitest"
import { ConfigInvalid, describeConfig, loadConfig } from "../src/config.js"

const key = Buffer.alloc(32, 7).toString("base64")
const load = (env: Record<string, string>) => Effect.runPromise(Effect.either(loadConfig({ BOTFLEET_SECRET_KEY: key, ...env })))
const problems = async (env: Record<string, string>) => {
  const r = await load(env)
  if (Either.isRight(r)) throw new Error("expected the configuration to be refused")
  expect(r.left).toBeInstanceOf(ConfigInvalid)
  return r.left
}

describe("configuration", () => {
  it("runs embedded with documented defaults when nothing is set", async () => {
    const r = await load({})
    const c = Either.getOrThrow(r)
    expect(c.mode).toBe("embedded")
    expect(c.partitions).toBe(16)
    expect(c.httpPort).toBe(8080)
    expect(c.dataDir.endsWith(".data")).toBe(true)
    expect(c.telegramApiRoot).toBe("https://api.telegram.org")
    expect(c.logLevel).toBe(LogLevel.Info)
    expect(c.leaseRenewMs).toBeLessThan(c.leaseTtlMs)
    expect(c.nodeId).toMatch(/^[A-Za-z0-9._-]+$/)
    expect(Buffer.from(Redacted.value(c.secretKey)).equals(Buffer.alloc(32, 7))).toBe(true)
  })

  it("reads production settings and keeps URLs redacted", async () => {
    const c = Either.getOrThrow(
      await load({
        DATABASE_URL: "postgres://u:pw@db:5432/bf",
        REDIS_URL: "redis://r:6379",
        PARTITIONS: "32",
        NODE_ID: "node-a",
        HTTP_PORT: "0",
        TELEGRAM_API_ROOT: "http://localhost:9000/",
        LOG_LEVEL: "DEBUG"
      })
    )
    expect(c.mode).toBe("production")
    expect(Option.map(c.databaseUrl, Redacted.value)).toEqual(Option.some("postgres://u:pw@db:5432/bf"))
    expect(String(Option.getOrThrow(c.databaseUrl))).not.toContain("pw")
    expect(c.partitions).toBe(32)
    expect(c.nodeId).toBe("node-a")
    expect(c.httpPort).toBe(0)
    expect(c.telegramApiRoot).toBe("http://localhost:9000")
    expect(c.logLevel).toBe(LogLevel.Debug)
    const shown = JSON.stringify(describeConfig(c))
    expect(shown).not.toContain("pw")
    expect(shown).not.toContain(key)
  })

  it("reads the migration login (production only, redacted) and the audit verification interval", async () => {
    const c = Either.getOrThrow(
      await load({ DATABASE_URL: "postgres://node@db/bf", REDIS_URL: "redis://r", MIGRATION_DATABASE_URL: "postgres://admin:s3cret@db/bf", AUDIT_VERIFY_EVERY_MS: "0" })
    )
    expect(Option.map(c.migrationDatabaseUrl, Redacted.value)).toEqual(Option.some("postgres://admin:s3cret@db/bf"))
    expect(c.auditVerifyEveryMs).toBe(0)
    expect(JSON.stringify(describeConfig(c))).not.toContain("s3cret")
    expect(Either.getOrThrow(await load({})).auditVerifyEveryMs).toBe(3_600_000)
    const embedded = await problems({ MIGRATION_DATABASE_URL: "postgres://admin@db/bf" })
    expect(embedded.problems).toEqual([{ variable: "MIGRATION_DATABASE_URL", problem: expect.stringContaining("production mode only") }])
    const bad = await problems({ AUDIT_VERIFY_EVERY_MS: "-1", DATABASE_URL: "postgres://x@db/bf", REDIS_URL: "redis://r", MIGRATION_DATABASE_URL: "mysql://x" })
    expect(bad.problems.map((p) => p.variable).sort()).toEqual(["AUDIT_VERIFY_EVERY_MS", "MIGRATION_DATABASE_URL"])
  })

  it("treats a blank variable as unset", async () => {
    const c = Either.getOrThrow(await load({ PARTITIONS: "  ", DATABASE_URL: "" }))
    expect(c.partitions).toBe(16)
    expect(c.mode).toBe("embedded")
  })

  it("refuses every malformed setting at once, naming each variable and what it expects", async () => {
    const e = await problems({ PARTITIONS: "abc", HTTP_PORT: "99999", LOG_LEVEL: "loud", TELEGRAM_API_ROOT: "ftp://x" })
    const byVar = Object.fromEntries(e.problems.map((p) => [p.variable, p.problem]))
    expect(Object.keys(byVar).sort()).toEqual(["HTTP_PORT", "LOG_LEVEL", "PARTITIONS", "TELEGRAM_API_ROOT"])
    expect(byVar["PARTITIONS"]).toBe('expects an integer from 1 to 1024, got "abc"')
    expect(byVar["HTTP_PORT"]).toContain("a TCP port from 0 to 65535")
    expect(e.message).toContain("PARTITIONS: expects an integer from 1 to 1024")
  })

  it("never echoes a malformed secret back", async () => {
    const e = await problems({ BOTFLEET_SECRET_KEY: "c2hvcnQ=", DATABASE_URL: "mysql://u:hunter2@x/db", REDIS_URL: "redis://x" })
    expect(e.problems.map((p) => p.variable).sort()).toEqual(["BOTFLEET_SECRET_KEY", "DATABASE_URL"])
    expect(e.message).not.toContain("hunter2")
    expect(e.message).not.toContain("c2hvcnQ=")
  })

  it("reads METRICS_BOT_LABELS as a yes/no setting, off by default, and refuses anything else naming it", async () => {
    expect(Either.getOrThrow(await load({})).metricsBotLabels).toBe(false)
    expect(Either.getOrThrow(await load({ METRICS_BOT_LABELS: "true" })).metricsBotLabels).toBe(true)
    expect(Either.getOrThrow(await load({ METRICS_BOT_LABELS: "0" })).metricsBotLabels).toBe(false)
    expect(describeConfig(Either.getOrThrow(await load({ METRICS_BOT_LABELS: "YES" })))["METRICS_BOT_LABELS"]).toBe("true")
    const e = await problems({ METRICS_BOT_LABELS: "constructor" })
    expect(e.problems).toEqual([{ variable: "METRICS_BOT_LABELS", problem: expect.stringContaining("true or false") }])
  })

  it("needs both DATABASE_URL and REDIS_URL for production", async () => {
    const e = await problems({ DATABASE_URL: "postgres://db/bf" })
    expect(e.problems).toEqual([{ variable: "REDIS_URL", problem: expect.stringContaining("production mode needs both") }])
  })

  it("names a Redis Cluster by REDIS_CLUSTER_NODES (REDIS_URL then gives only password and TLS) or by a redis+cluster:// URL", async () => {
    const alone = Either.getOrThrow(await load({ DATABASE_URL: "postgres://db/bf", REDIS_CLUSTER_NODES: "10.0.0.1:7000, 10.0.0.2:7000" }))
    expect(alone.mode).toBe("production")
    expect(Redacted.value(Option.getOrThrow(alone.redisUrl))).toBe("redis+cluster://10.0.0.1:7000,10.0.0.2:7000")
    const withUrl = Either.getOrThrow(await load({ DATABASE_URL: "postgres://db/bf", REDIS_URL: "rediss://app:s3cret@ignored:6379", REDIS_CLUSTER_NODES: "r1:6379,r2:6379" }))
    expect(Redacted.value(Option.getOrThrow(withUrl.redisUrl))).toBe("rediss+cluster://app:s3cret@r1:6379,r2:6379")
    const described = describeConfig(withUrl)
    expect(described).toMatchObject({ REDIS_URL: "[redacted]", REDIS_CLUSTER_NODES: "r1:6379,r2:6379" })
    expect(JSON.stringify(described)).not.toContain("s3cret")
    const url = Either.getOrThrow(await load({ DATABASE_URL: "postgres://db/bf", REDIS_URL: "redis+cluster://a:1,b:2" }))
    expect(describeConfig(url)).toMatchObject({ REDIS_CLUSTER_NODES: "a:1,b:2" })
    expect(describeConfig(Either.getOrThrow(await load({})))).toMatchObject({ REDIS_CLUSTER_NODES: "(unset)" })
  })

  it("refuses malformed cluster settings, and a cluster named twice, without echoing a password", async () => {
    expect((await problems({ DATABASE_URL: "postgres://db/bf", REDIS_CLUSTER_NODES: "just-a-host" })).problems).toEqual([
      { variable: "REDIS_CLUSTER_NODES", problem: expect.stringContaining("host:port") }
    ])
    const bad = await problems({ DATABASE_URL: "postgres://db/bf", REDIS_URL: "redis+cluster://u:hunter2@h" })
    expect(bad.problems.map((p) => p.variable)).toEqual(["REDIS_URL"])
    expect(JSON.stringify(bad.problems)).not.toContain("hunter2")
    const twice = await problems({ DATABASE_URL: "postgres://db/bf", REDIS_URL: "redis+cluster://a:1", REDIS_CLUSTER_NODES: "b:2" })
    expect(twice.problems).toEqual([{ variable: "REDIS_CLUSTER_NODES", problem: expect.stringContaining("name the cluster in one of them") }])
    // a cluster without a database is still half a production configuration
    expect((await problems({ REDIS_CLUSTER_NODES: "a:1" })).problems.map((p) => p.variable)).toEqual(["DATABASE_URL"])
  })

  it("needs BOTFLEET_SECRET_KEY in production", async () => {
    const r = await Effect.runPromise(Effect.either(loadConfig({ DATABASE_URL: "postgres://db/bf", REDIS_URL: "redis://r" })))
    expect(Either.isLeft(r) && r.left.problems[0]?.variable).toBe("BOTFLEET_SECRET_KEY")
  })

  it("isolates owners' kinds on up to 4 threads of 256 MB heap by default; 0 turns it off; nonsense is refused", async () => {
    const c = Either.getOrThrow(await load({}))
    expect([c.ownerThreads, c.ownerThreadHeapMb]).toEqual([4, 256])
    expect(Either.getOrThrow(await load({ OWNER_THREADS: "0", OWNER_THREAD_HEAP_MB: "1024" }))).toMatchObject({ ownerThreads: 0, ownerThreadHeapMb: 1024 })
    const e = await problems({ OWNER_THREADS: "-1", OWNER_THREAD_HEAP_MB: "8" })
    expect(e.problems.map((p) => p.variable).sort()).toEqual(["OWNER_THREADS", "OWNER_THREAD_HEAP_MB"])
    expect(describeConfig(c)).toMatchObject({ OWNER_THREADS: 4, OWNER_THREAD_HEAP_MB: 256 })
  })

  it("reads the hot-log window: events per stream, an age with its unit, the trim interval", async () => {
    const d = Either.getOrThrow(await load({}))
    expect([d.hotLogEvents, d.hotLogMaxAgeMs, d.hotLogTrimIntervalMs]).toEqual([100, 60_000, 60_000])
    expect(describeConfig(d)).toMatchObject({ HOT_LOG_EVENTS: 100, HOT_LOG_MAX_AGE: "1m", HOT_LOG_TRIM_INTERVAL_MS: 60_000 })
    for (const [text, ms, shown] of [["90s", 90_000, "90s"], ["2h", 7_200_000, "2h"], ["0s", 0, "0ms"], ["1500ms", 1500, "1500ms"], ["365d", 365 * 86_400_000, "365d"], ["120m", 7_200_000, "2h"]] as const) {
      const c = Either.getOrThrow(await load({ HOT_LOG_MAX_AGE: text, HOT_LOG_EVENTS: "1", HOT_LOG_TRIM_INTERVAL_MS: "1000" }))
      expect([c.hotLogMaxAgeMs, c.hotLogEvents, c.hotLogTrimIntervalMs]).toEqual([ms, 1, 1000])
      expect(describeConfig(c)["HOT_LOG_MAX_AGE"]).toBe(shown)
    }
    const e = await problems({ HOT_LOG_MAX_AGE: "10", HOT_LOG_EVENTS: "0", HOT_LOG_TRIM_INTERVAL_MS: "10" })
    const byVar = Object.fromEntries(e.problems.map((p) => [p.variable, p.problem]))
    expect(byVar["HOT_LOG_MAX_AGE"]).toBe('expects a duration from 0s to 365d: a whole number and a unit, ms, s, m, h or d (e.g. 90s, 10m, 2h), got "10"')
    expect(byVar["HOT_LOG_EVENTS"]).toContain("an integer from 1 to 10000000")
    expect(byVar["HOT_LOG_TRIM_INTERVAL_MS"]).toContain("an integer from 1000 to 86400000")
    for (const bad of ["366d", "1y", "-5m", "5 minutes"]) expect((await problems({ HOT_LOG_MAX_AGE: bad })).problems[0]?.variable).toBe("HOT_LOG_MAX_AGE")
  })

  it("refuses a lease renew interval that is not below the lease TTL", async () => {
    const e = await problems({ LEASE_TTL_MS: "5000", LEASE_RENEW_MS: "5000" })
    expect(e.problems[0]?.variable).toBe("LEASE_RENEW_MS")
  })
})
