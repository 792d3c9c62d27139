import pg from "pg"
import { Pool } from "undici"
import { corked } from "../../src/db/pgSql.js"
import { percentile } from "../report.js"
import { serveJobs } from "../e2e/procs.js"

/*
 * The load generator of `bench api`, in a process of its own (apart from the API server, as
 * clients are), and the baseline's client too, so both sides pay the same client costs in the
 * same process. A job is either
 * - `http`: GET requests to the API (request i: `targets[i % n]`, its path and bearer token), on
 *   `concurrency` keep-alive connections; or
 * - `sql`: the same statements the route runs, sent by `pg` straight to Postgres as the database
 *   login (no HTTP, no token, no transaction, no role, no row-level security), on `concurrency`
 *   pooled connections; a request's statements are pipelined on one connection, as the API sends
 *   them.
 * Closed loop (`concurrency` requests in flight, `amount` of them: the most it answers), or open
 * loop (`rate` requests per second offered for `seconds`, each timed from when it was due, so a
 * slow answer cannot hide the ones queued behind it).
 */

export interface Target {
  readonly path: string
  readonly token: string
  readonly statements: ReadonlyArray<{ readonly text: string; readonly params: ReadonlyArray<unknown>; readonly name?: string }>
}

export interface LoadJob {
  readonly via: "http" | "sql"
  readonly base: string
  readonly databaseUrl: string
  readonly targets: ReadonlyArray<Target>
  readonly concurrency: number
  readonly amount?: number
  readonly rate?: number
  readonly seconds?: number
  readonly warmup: number
}

export interface LoadResult {
  readonly done: number
  readonly failed: number
  readonly firstFailure: string | null
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
  /** CPU time of this process (the client side) per request, µs. */
  readonly clientCpuMicros: number
}

const ms = (v: number) => Math.round(v * 10) / 10

const requester = (job: LoadJob) => {
  if (job.via === "http") {
    const pool = new Pool(job.base, { connections: job.concurrency, pipelining: 1 })
    return {
      one: async (t: Target) => {
        const res = await pool.request({ method: "GET", path: t.path, headers: { authorization: `Bearer ${t.token}` } })
        const body = await res.body.text()
        if (res.statusCode !== 200) throw new Error(`${t.path} answered ${res.statusCode}: ${body.slice(0, 200)}`)
      },
      close: () => pool.close()
    }
  }
  const pool = new pg.Pool({ connectionString: job.databaseUrl, max: job.concurrency, pipeline: true, application_name: "bench-api-direct" } as pg.PoolConfig)
  return {
    one: async (t: Target) => {
      const client = await pool.connect()
      try {
        // prepared under the same names as the API's, one socket write as the API's
        await Promise.all(corked(client, () => t.statements.map((s) => client.query({ text: s.text, values: s.params as unknown[], ...(s.name ? { name: s.name } : {}) }))))
      } finally {
        client.release()
      }
    },
    close: () => pool.end()
  }
}

const runJob = async (job: LoadJob): Promise<LoadResult> => {
  const r = requester(job)
  const times: Array<number> = []
  let failed = 0
  let firstFailure: string | null = null
  const timed = async (i: number, dueAt: number) => {
    try {
      await r.one(job.targets[i % job.targets.length]!)
      times.push(performance.now() - dueAt)
    } catch (e) {
      failed++
      firstFailure ??= String(e)
    }
  }
  try {
    for (let i = 0; i < job.warmup; i++) await timed(i, performance.now())
    times.length = 0
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    if (job.rate === undefined) {
      let next = 0
      await Promise.all(
        Array.from({ length: job.concurrency }, async () => {
          while (next < job.amount!) {
            const i = next++
            await timed(i, performance.now())
          }
        })
      )
    } else {
      const total = Math.round(job.rate * job.seconds!)
      const interval = 1000 / job.rate
      const inFlight: Array<Promise<void>> = []
      for (let i = 0; i < total; i++) {
        const dueAt = t0 + i * interval
        const wait = dueAt - performance.now()
        if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait))
        inFlight.push(timed(i, dueAt))
      }
      await Promise.all(inFlight)
    }
    const seconds = (performance.now() - t0) / 1000
    const cpu = process.cpuUsage(cpu0)
    times.sort((a, b) => a - b)
    return {
      done: times.length, failed, firstFailure, perSecond: Math.round(times.length / seconds), p50: ms(percentile(times, 50)), p99: ms(percentile(times, 99)),
      clientCpuMicros: Math.round((cpu.user + cpu.system) / Math.max(1, times.length))
    }
  } finally {
    await r.close()
  }
}

serveJobs(runJob)
