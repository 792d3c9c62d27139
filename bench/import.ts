import { randomBytes } from "node:crypto"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { importLegacy } from "../src/cli/import/importer.js"
import { EventLog } from "../src/events/eventLog.js"
import type { EventLogService } from "../src/events/eventLog.js"
import { makeMemoryEventLog } from "../src/events/memoryEventLog.js"
import { makeRedisEventLog } from "../src/events/redisEventLog.js"
import { migrate } from "../src/db/migrator.js"
import { makePgSql } from "../src/db/pgSql.js"
import { openUserKeys, withSealing } from "../src/privacy/sealingLog.js"
import { createScratchDatabase } from "../test/support/databases.js"
import { rate, report } from "./report.js"
import { deleteKeysUnder } from "../test/support/redisCleanup.js"

/*
 * `npm run bench -- import`: legacy records imported per second (validate, plan, one append, read
 * back, reconcile) against the same-run baseline of reading and JSON-parsing the same files
 * without acting on them. Target ≥ 10,000 records/s on Redis. Each line also gives the CPU time
 * the import took in this process and the load average: on the shared 2-core machine the wall
 * clock figure moves with whatever else runs, the CPU time much less. `import.redis.sealed` is
 * the same import through the sealing log (docs/privacy.md: each legacy user's records sealed
 * with their key, ~60,000 keys made in batches, keys in Postgres), its baseline the unsealed
 * Redis import of the same run.
 */

const SESSIONS = 60_000
const MESSAGES = 40_000

const writeFixtures = async (dir: string): Promise<ReadonlyArray<string>> => {
  const sessions = Array.from({ length: SESSIONS }, (_, i) => ({
    id: `${-1_000_000 - (i % 500)}:${i}`,
    data: { step: i % 7, cart: ["tea", "milk"].slice(0, i % 3), name: `Зоя ${i} 🐱`, __scenes: i % 4 === 0 ? { current: "checkout", state: { n: i } } : {} }
  }))
  const messages = Array.from({ length: MESSAGES }, (_, i) => ({ chat_id: -1_000_000 - (i % 500), message_id: i, from_id: i % 900, date: 1_700_000_000 + i, text: `message ${i} — hello` }))
  const a = join(dir, "sessions.json")
  const b = join(dir, "generic.json")
  await writeFile(a, JSON.stringify({ sessions, counters: { starts: 1 } }))
  await writeFile(b, JSON.stringify({ messages, settings: { welcome: "hi" } }))
  return [a, b]
}

const register = (log: EventLogService, botId: string) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const lease = (yield* log.acquireLease(botId, "bench", 10_000))!
      yield* log.append({ botId, expectedVersion: 0, fence: lease.fence, events: [{ occurredAt: new Date().toISOString(), correlationId: "c", actor: "owner:o", data: { _tag: "BotRegistered", ownerId: "o", name: "b", kind: "builtin", mode: "sandbox" } }] })
      yield* log.releaseLease(lease)
    })
  )

export const run = async (): Promise<void> => {
  const dir = await mkdtemp(join(tmpdir(), "bf-bench-import-"))
  const files = await writeFixtures(dir)
  const records = SESSIONS + MESSAGES + 2
  const parse = async () => {
    for (const f of files) JSON.parse(await readFile(f, "utf8"))
  }
  await parse() // warm up
  const baseline = await rate(records, parse)

  const importWith = async (log: EventLogService, botId: string) => {
    await register(log, botId)
    const cpu = process.cpuUsage()
    const value = await rate(records, async () => {
      const r = await Effect.runPromise(importLegacy({ botId, files }).pipe(Effect.provideService(EventLog, log)))
      if (!r.reconciliation?.ok || r.appended?.events !== records) throw new Error("import bench: reconciliation failed")
    })
    const used = process.cpuUsage(cpu)
    return { value, cpuMs: Math.round((used.user + used.system) / 1000), load: Math.round(loadavg()[0]! * 10) / 10 }
  }

  const memory = makeMemoryEventLog()
  report({ bench: "import.memory", unit: "records/s", ...(await importWith(memory, "bench-mem")), baseline: "read+JSON.parse", baselineValue: baseline, records })

  const url = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"
  const prefix = `bfbench-${randomBytes(3).toString("hex")}`
  const redisLog = await Effect.runPromise(makeRedisEventLog({ url, prefix }))
  const db = await createScratchDatabase(process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres", "bf_bench_import")
  const sql = makePgSql(db.url)
  try {
    const plain = await importWith(redisLog, "bench-redis")
    report({ bench: "import.redis", unit: "records/s", ...plain, baseline: "read+JSON.parse", baselineValue: baseline, records })
    await migrate(sql)
    const { cache } = openUserKeys(sql, Buffer.alloc(32, 1), { listen: false })
    const sealed = await importWith(withSealing(redisLog, cache), "bench-redis-sealed")
    cache.close()
    report({ bench: "import.redis.sealed", unit: "records/s", ...sealed, baseline: "import.redis (no sealing)", baselineValue: plain.value, records })
  } finally {
    await sql.close()
    await db.drop()
    await Effect.runPromise(redisLog.close)
    const redis = new Redis(url)
    await deleteKeysUnder(redis, prefix)
    redis.disconnect()
    await rm(dir, { recursive: true, force: true })
  }
}
