import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { mkdtemp, readdir, rm, stat, truncate } from "node:fs/promises"
import net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Redis } from "ioredis"

/*
 * A redis-server of the test's (or benchmark's) own, with AOF persistence in a folder of its own,
 * that can be killed with SIGKILL and started again on the same folder. Never the shared server.
 */

export type Appendfsync = "always" | "everysec"

export interface PrivateRedisServer {
  readonly url: string
  readonly port: number
  readonly dir: string
  readonly appendfsync: Appendfsync
  /** SIGKILL: no shutdown, no final fsync; resolves once the process is gone. */
  readonly kill: () => Promise<void>
  /** Starts the server again on the same folder (loading its AOF); resolves once it answers PING. */
  readonly restart: () => Promise<void>
  /** Size of the AOF's incremental file (what was written since the last rewrite). */
  readonly aofSize: () => Promise<number>
  /**
   * Cuts the AOF's incremental file back to `size` bytes while the server is down: what a host
   * crash does to writes that were not fsynced yet.
   */
  readonly truncateAof: (size: number) => Promise<void>
  /** Stops the server and deletes its folder. */
  readonly close: () => Promise<void>
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once("exit", () => resolve())
  })

const answers = async (url: string, timeoutMs = 30_000) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    probe.on("error", () => undefined)
    try {
      await probe.connect()
      // a server still loading its AOF answers LOADING: wait for a real PONG
      if ((await probe.ping()) === "PONG") return
    } catch {
      // not up yet
    } finally {
      probe.disconnect()
    }
    if (Date.now() > deadline) throw new Error(`private redis at ${url} did not answer within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

export const startPrivateRedisServer = async (appendfsync: Appendfsync): Promise<PrivateRedisServer> => {
  const dir = await mkdtemp(join(tmpdir(), "bf-redis-"))
  const port = await freePort()
  const url = `redis://127.0.0.1:${port}`
  const args = [
    "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--dir", dir, "--appendonly", "yes", "--appendfsync", appendfsync,
    "--appenddirname", "aof", "--aof-load-truncated", "yes", "--auto-aof-rewrite-percentage", "0", "--daemonize", "no", "--logfile", join(dir, "redis.log")
  ]
  let child: ChildProcess
  const start = async () => {
    child = spawn("redis-server", args, { stdio: "ignore" })
    await answers(url)
  }
  await start()
  const incrFile = async () => {
    const files = (await readdir(join(dir, "aof"))).filter((f) => f.endsWith(".incr.aof")).sort()
    if (files.length === 0) throw new Error("no incremental AOF file")
    return join(dir, "aof", files[files.length - 1]!)
  }
  return {
    url,
    port,
    dir,
    appendfsync,
    kill: async () => {
      child.kill("SIGKILL")
      await exited(child)
    },
    restart: start,
    aofSize: async () => (await stat(await incrFile())).size,
    truncateAof: async (size) => truncate(await incrFile(), size),
    close: async () => {
      child.kill("SIGKILL")
      await exited(child)
      await rm(dir, { recursive: true, force: true })
    }
  }
}
