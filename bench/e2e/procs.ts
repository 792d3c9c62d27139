import { fork, spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { createServer } from "node:net"
import type { AddressInfo } from "node:net"
import { fileURLToPath } from "node:url"

/** A child process of `bench e2e` that answers requests over IPC (`{ id, ... }` both ways). */
export interface Child {
  readonly process: ChildProcess
  /** The child's first message (`{ op: "listening", ... }`). */
  readonly hello: Record<string, unknown>
  readonly ask: <A>(msg: Record<string, unknown>) => Promise<A>
  readonly stop: () => Promise<void>
}

/**
 * The child's side of `forkChild`: answers each `{ id, job }` with `runJob`'s result (or its
 * error), exits when the parent disconnects, and says it is ready.
 */
export const serveJobs = <J>(runJob: (job: J) => Promise<unknown>): void => {
  process.on("message", (msg: { id: number; job: J }) => {
    runJob(msg.job).then(
      (result) => process.send!({ id: msg.id, result }),
      (e: unknown) => process.send!({ id: msg.id, error: String(e) })
    )
  })
  process.on("disconnect", () => process.exit(0))
  process.send!({ op: "listening" })
}

const exited = (p: ChildProcess) => new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once("exit", () => r())))

/** Forks a bench/e2e/*.ts file through tsx (with `nodeArgs`, e.g. --cpu-prof) and waits for its first message. */
export const forkChild = async (file: string, env: Record<string, string> = {}, nodeArgs: ReadonlyArray<string> = []): Promise<Child> => {
  const p = fork(fileURLToPath(new URL(file, import.meta.url)), [], { execArgv: [...nodeArgs, "--import", "tsx"], env: { ...process.env, ...env }, stdio: ["ignore", "inherit", "inherit", "ipc"] })
  let next = 0
  const waiting = new Map<number, { resolve: (v: never) => void; reject: (e: Error) => void }>()
  const hello = await new Promise<Record<string, unknown>>((resolve, reject) => {
    p.once("message", (m) => resolve(m as Record<string, unknown>))
    p.once("exit", (code) => reject(new Error(`${file} exited with ${code} before it was ready`)))
  })
  p.on("message", (m: { id?: number; error?: string }) => {
    const w = m.id === undefined ? undefined : waiting.get(m.id)
    if (!w) return
    waiting.delete(m.id!)
    if (m.error) w.reject(new Error(m.error))
    else w.resolve(m as never)
  })
  return {
    process: p,
    hello,
    ask: <A>(msg: Record<string, unknown>) =>
      new Promise<A>((resolve, reject) => {
        const id = ++next
        waiting.set(id, { resolve: resolve as (v: never) => void, reject })
        p.send({ ...msg, id })
      }),
    stop: async () => {
      // a disconnect is the child's cue to clean up (its Redis keys) and exit; SIGTERM if it does not
      // (a child that died already has no channel left to close)
      if (p.connected) p.disconnect()
      await Promise.race([exited(p), new Promise((r) => setTimeout(r, 10_000))])
      if (p.exitCode === null && p.signalCode === null) p.kill("SIGTERM")
      await exited(p)
    }
  }
}

/** `botfleet run ...` as ops start it (bin/botfleet.js), its stderr (JSON log lines) kept for a failure report. */
export const spawnBotfleet = (args: ReadonlyArray<string>, env: Record<string, string>) => {
  // BENCH_E2E_BOTFLEET_BIN: another checkout's bin/botfleet.js (a before/after comparison)
  const bin = process.env["BENCH_E2E_BOTFLEET_BIN"] ?? fileURLToPath(new URL("../../bin/botfleet.js", import.meta.url))
  const p = spawn(process.execPath, [...(process.env["BENCH_E2E_NODE_ARGS"]?.split(" ").filter(Boolean) ?? []), bin, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] })
  let log = ""
  p.stderr.on("data", (c: Buffer) => {
    log = (log + c.toString("utf8")).slice(-20_000)
  })
  return {
    process: p,
    log: () => log,
    /** SIGTERM: the node drains and stops, as on a deploy. */
    stop: async () => {
      if (p.exitCode === null && p.signalCode === null) p.kill("SIGTERM")
      await exited(p)
    }
  }
}

/** A TCP port free right now on 127.0.0.1. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as AddressInfo).port
      s.close(() => resolve(port))
    })
  })
