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

  it("refuses a lease renew interval that is not below the lease TTL", async () => {
    const e = await problems({ LEASE_TTL_MS: "5000", LEASE_RENEW_MS: "5000" })
    expect(e.problems[0]?.variable).toBe("LEASE_RENEW_MS")
  })
})
