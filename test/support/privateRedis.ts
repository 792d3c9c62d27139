import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { createServer } from "node:net"
import { Redis } from "ioredis"

/** A free TCP port on 127.0.0.1 (free when asked; taken by whoever binds it next). */
export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })

/**
 * A redis-server of the test's own, on a free port, that the test may stop and start again (the
 * shared Redis is never stopped). With `dir`, its data is kept there (append-only file) across a
 * restart; without, a restart starts empty.
 */
export interface PrivateRedis {
  readonly url: string
  readonly stop: () => Promise<void>
  readonly start: () => Promise<void>
}

const answers = async (url: string) => {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  r.on("error", () => undefined)
  try {
    await r.connect()
    return (await r.ping()) === "PONG"
  } catch {
    return false
  } finally {
    r.disconnect()
  }
}

export const startPrivateRedis = async (o: { readonly dir?: string } = {}): Promise<PrivateRedis> => {
  const port = await freePort()
  const url = `redis://127.0.0.1:${port}`
  let server: ChildProcess | null = null
  const start = async () => {
    const persistence = o.dir ? ["--dir", o.dir, "--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"]
    server = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", ...persistence], { stdio: "ignore" })
    for (let i = 0; i < 200 && !(await answers(url)); i++) await new Promise((r) => setTimeout(r, 25))
    if (!(await answers(url))) throw new Error(`the private redis-server on port ${port} did not start (is redis-server installed?)`)
  }
  const stop = async () => {
    const s = server
    server = null
    if (!s || s.exitCode !== null) return
    const exited = new Promise((r) => s.once("exit", r))
    s.kill("SIGTERM")
    await exited
  }
  await start()
  return { url, stop, start }
}
