import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { Effect } from "effect"
import * as Minio from "minio"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { migrate } from "../../../src/db/migrator.js"
import { makePgSql } from "../../../src/db/pgSql.js"
import type { SqlClient } from "../../../src/db/sql.js"
import type { EventLogService } from "../../../src/events/eventLog.js"
import { makeRedisEventLog } from "../../../src/events/redisEventLog.js"
import { makeProjector } from "../../../src/projections/projector.js"
import { captureCli } from "../../cli/support.js"
import { appendFacts, received, registered } from "../../projections/fixtures.js"
import { fleetEnv } from "../../runtime/support.js"
import { createTestDatabase } from "../../support/db.js"
import { createTestPrefix } from "../../support/redis.js"

/*
 * Backups into an S3-compatible bucket through the minio client, against a real S3-compatible
 * HTTP server run as a separate process for this suite: s3rver (npm), which checks request
 * signatures and keeps objects on disk. Written with the manifest last, listed, verified by
 * reading the objects back, restored by the drill from downloaded objects, and retention deletes
 * the oldest backups' objects.
 */

const BUCKET = "bf-backups"
let server: ChildProcess
let port: number
let storeDir: string
let env: Record<string, string>
let log: EventLogService
let sql: SqlClient
let client: Minio.Client
const cleanups: Array<() => Promise<unknown>> = []

const startS3rver = async (dir: string): Promise<{ child: ChildProcess; port: number }> => {
  const bin = join(dirname(createRequire(import.meta.url).resolve("s3rver/package.json")), "bin", "s3rver.js")
  const child = spawn(process.execPath, [bin, "-d", dir, "-a", "127.0.0.1", "-p", "0", "--configure-bucket", BUCKET], { stdio: ["ignore", "pipe", "pipe"] })
  const found = await new Promise<number>((resolve, reject) => {
    let out = ""
    const timer = setTimeout(() => reject(new Error(`s3rver did not start: ${out}`)), 30_000)
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString()
      const m = /listening on [^\s]*:(\d+)/i.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    })
    child.stderr!.on("data", (d: Buffer) => void (out += d.toString()))
    child.on("exit", (code) => reject(new Error(`s3rver exited (${code}): ${out}`)))
  })
  return { child, port: found }
}

const cli = (...argv: Array<string>) => captureCli(env, argv)

const objectNames = async () => {
  const names: Array<string> = []
  for await (const o of client.listObjectsV2(BUCKET, "", true)) if (o.name) names.push(o.name)
  return names.sort()
}

beforeAll(async () => {
  storeDir = await mkdtemp(join(tmpdir(), "bf-s3rver-"))
  const s3 = await startS3rver(storeDir)
  server = s3.child
  port = s3.port
  client = new Minio.Client({ endPoint: "127.0.0.1", port, useSSL: false, accessKey: "S3RVER", secretKey: "S3RVER", region: "us-east-1", pathStyle: true })
  const db = await createTestDatabase("bk_s3")
  const redis = createTestPrefix("bk-s3")
  const dataDir = await mkdtemp(join(tmpdir(), "bf-s3-"))
  env = fleetEnv(
    { db, redis, secretKey: randomBytes(32).toString("base64"), dataDir },
    {
      LOG_LEVEL: "warning",
      BACKUP_TARGET: `s3://${BUCKET}/fleet-one`,
      BACKUP_S3_ENDPOINT: `http://127.0.0.1:${port}`,
      BACKUP_S3_ACCESS_KEY: "S3RVER",
      BACKUP_S3_SECRET_KEY: "S3RVER",
      BACKUP_KEEP: "2"
    }
  )
  log = await Effect.runPromise(makeRedisEventLog({ url: redis.url, prefix: redis.prefix }))
  sql = makePgSql(db.url)
  await migrate(sql)
  cleanups.push(() => Effect.runPromise(log.close), () => sql.close(), () => redis.cleanup(), () => db.drop(), () => rm(dataDir, { recursive: true, force: true }))
  for (const [i, bot] of ["north", "south"].entries()) {
    await appendFacts(log, bot, [registered(`owner-${i}`, bot), received(200 + i, 20 + i, 1, "hello from s3")])
  }
  for (let p = 0; p < log.partitions; p++) {
    const projector = makeProjector({ log, sql, partition: p, blockMs: 0 })
    for (;;) if ((await Effect.runPromise(projector.step)).caughtUp) break
  }
}, 90_000)

afterAll(async () => {
  server?.kill()
  for (const c of cleanups) await c().catch(() => undefined)
  await rm(storeDir, { recursive: true, force: true })
})

describe("backups in an S3-compatible bucket", () => {
  it("writes (manifest last), lists, verifies by reading back, and the drill restores from the bucket", async () => {
    const taken = await cli("backup", "now", "--json")
    expect(taken.err).toBe("")
    expect(taken.code).toBe(0)
    const first = JSON.parse(taken.out)
    expect(first).toMatchObject({ target: `s3://${BUCKET}/fleet-one/`, ok: true, events: 4 })
    const names = await objectNames()
    expect(names).toContain(`fleet-one/${first.name}/manifest.json`)
    expect(names).toContain(`fleet-one/${first.name}/fleet_bots.ndjson`)
    expect(names.filter((n) => n.startsWith(`fleet-one/${first.name}/events-p`))).toHaveLength(16)

    const listed = JSON.parse((await cli("backup", "list", "--json")).out)
    expect(listed.backups).toMatchObject([{ name: first.name, finished: true, events: 4, written: { ok: true } }])

    const drill = await cli("backup", "drill", "--json")
    expect(drill.code).toBe(0)
    expect(JSON.parse(drill.out)).toMatchObject({ backup: first.name, ok: true, comparison: { identical: true, settledBots: 2 } })
  }, 120_000)

  it("an object damaged in the bucket fails verification; retention deletes the oldest backups' objects", async () => {
    const { name } = JSON.parse((await cli("backup", "now", "--json")).out)
    let damaged: string | null = null
    for (const key of (await objectNames()).filter((n) => n.startsWith(`fleet-one/${name}/events-p`))) {
      const chunks: Array<Buffer> = []
      for await (const c of await client.getObject(BUCKET, key)) chunks.push(Buffer.from(c))
      const text = Buffer.concat(chunks).toString("utf8")
      if (!text.includes("hello from s3")) continue
      await client.putObject(BUCKET, key, Buffer.from(text.replace("hello from s3", "hello from s4")))
      damaged = key.slice(key.lastIndexOf("/") + 1)
      break
    }
    expect(damaged).not.toBeNull()
    const verify = await cli("backup", "verify", name)
    expect(verify.code).toBe(1)
    expect(verify.err).toContain(`${damaged}: checksum mismatch`)

    // BACKUP_KEEP=2: a third (verified) backup deletes the oldest
    const before = JSON.parse((await cli("backup", "list", "--json")).out).backups.map((b: { name: string }) => b.name)
    expect(before).toHaveLength(2)
    await new Promise((r) => setTimeout(r, 1100)) // a new second: a new name
    const third = JSON.parse((await cli("backup", "now", "--json")).out)
    expect(third).toMatchObject({ ok: true, deleted: [before[0]] })
    expect((await objectNames()).some((n) => n.startsWith(`fleet-one/${before[0]}/`))).toBe(false)
    expect(JSON.parse((await cli("backup", "list", "--json")).out).backups.map((b: { name: string }) => b.name)).toEqual([before[1], third.name])
  }, 120_000)
})
