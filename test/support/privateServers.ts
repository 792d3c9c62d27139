import { execFile, spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { existsSync, readdirSync } from "node:fs"
import { chmod, chown, mkdtemp, rm } from "node:fs/promises"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import pg from "pg"
import { Redis } from "ioredis"

/*
 * Private Postgres and Redis servers for tests that stop, restart or cut a server (fault drills):
 * the shared servers on 5432/6379 belong to everyone and are never touched. Each server lives in a
 * temp folder on a free port and is removed with `stop`.
 */

const run = promisify(execFile)

/** A TCP port nobody listens on right now (the OS picks it). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolve(port))
    })
  })

const waitFor = async (what: string, cond: () => Promise<boolean>, ms = 60_000, fatal: () => Error | null = () => null) => {
  const end = Date.now() + ms
  while (Date.now() < end) {
    const stop = fatal()
    if (stop) throw stop
    if (await cond().catch(() => false)) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${what} did not come up within ${ms} ms`)
}

/** initdb and pg_ctl of the newest installed Postgres (Debian layout), else whatever is on PATH. */
const pgBin = (tool: string): string => {
  const root = "/usr/lib/postgresql"
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a))
    for (const v of versions) if (existsSync(join(root, v, "bin", tool))) return join(root, v, "bin", tool)
  }
  return tool
}

const MISSING = "fault drills start private servers: they need the PostgreSQL server tools (initdb, pg_ctl; Debian: postgresql) and redis-server on this machine"

/** Postgres refuses to run as root: as root, its tools run as the `postgres` user. */
const asPostgres = (file: string, args: ReadonlyArray<string>) =>
  (process.getuid?.() === 0 ? run("runuser", ["-u", "postgres", "--", file, ...args]) : run(file, [...args])).catch((e: NodeJS.ErrnoException) => {
    throw e.code === "ENOENT" ? new Error(`${MISSING} (${file} not found)`) : e
  })

export interface PrivatePostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust authentication). */
  readonly url: string
  readonly port: number
  /** `pg_ctl stop -m fast`: every connection is terminated (57P01), the server exits. */
  readonly stop: () => Promise<void>
  /** Starts the stopped server again on the same port and folder (its data intact). */
  readonly start: () => Promise<void>
  /** Terminates every backend of the server except the caller's own (pg_terminate_backend). */
  readonly terminateBackends: (where?: string) => Promise<number>
  /** Stops the server (if running) and deletes its folder. */
  readonly remove: () => Promise<void>
}

/** A fresh cluster (initdb, trust, fsync off: nothing here must survive a machine crash) on a free port. */
export const startPrivatePostgres = async (): Promise<PrivatePostgres> => {
  const dir = await mkdtemp(join(tmpdir(), "bf-private-pg-"))
  if (process.getuid?.() === 0) {
    const { stdout } = await run("id", ["-u", "postgres"])
    const { stdout: gid } = await run("id", ["-g", "postgres"])
    await chown(dir, Number(stdout.trim()), Number(gid.trim()))
  }
  await chmod(dir, 0o700)
  const data = join(dir, "data")
  const port = await freePort()
  await asPostgres(pgBin("initdb"), ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale", "C"])
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`
  const ready = () =>
    waitFor(`the private Postgres on port ${port}`, async () => {
      const c = new pg.Client({ connectionString: url })
      c.on("error", () => undefined)
      try {
        await c.connect()
        await c.query("SELECT 1")
        return true
      } finally {
        await c.end().catch(() => undefined)
      }
    })
  let running = false
  const start = async () => {
    await asPostgres(pgBin("pg_ctl"), ["-D", data, "-o", options, "-l", join(dir, "log"), "-w", "-t", "60", "start"])
    running = true
    await ready()
  }
  const stop = async () => {
    await asPostgres(pgBin("pg_ctl"), ["-D", data, "-m", "fast", "-w", "-t", "60", "stop"])
    running = false
  }
  await start()
  return {
    url,
    port,
    start,
    stop,
    terminateBackends: async (where = "true") => {
      const c = new pg.Client({ connectionString: url })
      c.on("error", () => undefined)
      await c.connect()
      try {
        const r = await c.query(
          `SELECT count(*)::int AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' AND ${where}) t`
        )
        return (r.rows[0] as { n: number }).n
      } finally {
        await c.end().catch(() => undefined)
      }
    },
    remove: async () => {
      if (running) await stop().catch(() => undefined)
      await rm(dir, { recursive: true, force: true })
    }
  }
}

export interface PrivateRedis {
  readonly url: string
  readonly port: number
  /** SIGKILL: no shutdown, no save; what the AOF holds (appendfsync always) is what comes back. */
  readonly kill: () => Promise<void>
  /** Starts the server again on the same port and folder (replaying its AOF). */
  readonly start: () => Promise<void>
  /** Kills the server and deletes its folder. */
  readonly remove: () => Promise<void>
}

/**
 * A private redis-server child process. With `aof`, every write is in the append-only file before
 * it is acknowledged (appendfsync always), so a kill and restart loses nothing acknowledged.
 */
export const startPrivateRedis = async (options: { readonly aof?: boolean } = {}): Promise<PrivateRedis> => {
  const dir = await mkdtemp(join(tmpdir(), "bf-private-redis-"))
  const port = await freePort()
  const url = `redis://127.0.0.1:${port}`
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--dir", dir, "--daemonize", "no"]
  if (options.aof) args.push("--appendonly", "yes", "--appendfsync", "always")
  else args.push("--appendonly", "no")
  let child: ChildProcess | null = null
  const start = async () => {
    const c = spawn("redis-server", args, { stdio: "ignore" })
    let missing: Error | null = null
    c.once("error", (e: NodeJS.ErrnoException) => (missing = e.code === "ENOENT" ? new Error(`${MISSING} (redis-server not found)`) : e))
    child = c
    await waitFor(`the private Redis on port ${port}`, async () => {
      const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
      probe.on("error", () => undefined)
      try {
        await probe.connect()
        // while it loads the AOF, Redis answers LOADING
        return (await probe.ping()) === "PONG"
      } finally {
        probe.disconnect()
      }
    }, 60_000, () => missing)
  }
  const kill = async () => {
    const c = child
    child = null
    if (!c || c.exitCode !== null) return
    const exited = new Promise((r) => c.once("exit", r))
    c.kill("SIGKILL")
    await exited
  }
  await start()
  return {
    url,
    port,
    kill,
    start,
    remove: async () => {
      await kill()
      await rm(dir, { recursive: true, force: true })
    }
  }
}
