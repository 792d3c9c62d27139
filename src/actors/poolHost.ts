import { MessageChannel } from "node:worker_threads"
import type { ResourceLimits } from "node:worker_threads"
import { Schema } from "effect"
import { Piscina } from "piscina"
import { absorbThreadStats } from "../metrics/threadStats.js"
import { processHealth } from "../health/processHealth.js"
import type { ActorHealth, ActorStatus } from "./actor.js"
import { ActorDied } from "./host.js"
import type { ActorHandle, ActorHost } from "./host.js"
import type { ToWorker, WorkerSetup } from "./worker/input.js"
import { FromWorker, TaskResult, fromErrorInfo } from "./worker/output.js"

export interface PoolHostOptions {
  readonly threads: number
  /**
   * Actors one thread hosts at most: piscina's `concurrentTasksPerWorker`. Each actor is a task
   * that never returns while the bot runs, so with the default (100) a 2-thread pool would queue
   * every bot past the 200th forever.
   */
  readonly botsPerThread: number
  /** How each thread builds its ports (e.g. `redisActorDeps.ts` and its options). */
  readonly setup: WorkerSetup
  readonly resourceLimits?: ResourceLimits
}

const here = new URL(import.meta.url)
const isTs = here.pathname.endsWith(".ts")
const workerFile = new URL(`./worker/actorWorker.${isTs ? "ts" : "js"}`, here)
const decodeFromWorker = Schema.decodeUnknownSync(FromWorker)
const decodeResult = Schema.decodeUnknownSync(TaskResult)

/**
 * Actors on a piscina pool, each bot one long-lived task with its own MessagePort: its state
 * lives on one thread for the actor's whole life. A thread that dies (process.exit, an uncaught
 * throw, out of memory) rejects every task it held: each of those handles' `done` rejects with
 * `ActorDied { where: "thread" }` and piscina starts a replacement thread; supervisors restart
 * the actors, which rehydrate from their snapshot and stream.
 */
export const makePoolHost = (options: PoolHostOptions): ActorHost => {
  const pool = new Piscina({
    filename: workerFile.href,
    minThreads: options.threads,
    maxThreads: options.threads,
    concurrentTasksPerWorker: options.botsPerThread,
    // "sync" atomics park an idle worker in Atomics.wait, freezing the event loop that the other
    // long-lived actors of that thread need
    atomics: "disabled",
    idleTimeout: 2 ** 31 - 1,
    maxQueue: Number.MAX_SAFE_INTEGER,
    execArgv: isTs ? ["--import", "tsx"] : [],
    workerData: { setup: options.setup },
    resourceLimits: options.resourceLimits
  })
  // a thread that dies with no task on it is reported here; its replacement is automatic
  pool.on("error", () => undefined)
  let closing = false
  // threads that ran an actor: when one ends, its connections leave the dependency record
  const threads = new Set<number>()
  const threadEnded = (id: number) => {
    threads.delete(id)
    processHealth.forgetThread(id)
  }

  return {
    start: (spec) => {
      const { port1, port2 } = new MessageChannel()
      let threadId: number | null = null
      const pending = new Map<number, { resolve: (s: ActorStatus) => void; reject: (e: unknown) => void }>()
      let nextId = 1
      let health: ActorHealth = { beatAt: Date.now(), busySince: null }
      let markStarted!: (s: ActorStatus) => void
      const startedP = new Promise<ActorStatus>((resolve) => (markStarted = resolve))

      port1.on("message", (raw: unknown) => {
        const msg = decodeFromWorker(raw)
        switch (msg._tag) {
          case "Started":
            health = { beatAt: Date.now(), busySince: null }
            threadId = msg.threadId
            threads.add(msg.threadId)
            markStarted(msg.status)
            break
          case "Heartbeat":
            // the worker's clock and ours are the same machine's; keep the worker's busySince
            health = { beatAt: Date.now(), busySince: msg.busySince }
            if (msg.stats) absorbThreadStats(msg.stats)
            break
          case "Reply":
            pending.get(msg.requestId)?.resolve(msg.status)
            pending.delete(msg.requestId)
            break
          case "Refused":
            pending.get(msg.requestId)?.reject(fromErrorInfo(msg.error))
            pending.delete(msg.requestId)
            break
        }
      })

      const done = (pool.run({ spec, port: port2 }, { transferList: [port2] }) as Promise<unknown>).then(
        (raw) => {
          const r = decodeResult(raw)
          if (r._tag === "Stopped") return r.status
          throw new ActorDied({ botId: spec.botId, where: "actor", name: r.error.name, reason: r.error.message })
        },
        (e: unknown) => {
          const err = e as Error
          if (threadId !== null) threadEnded(threadId)
          throw new ActorDied({ botId: spec.botId, where: "thread", name: err?.name ?? "Error", reason: err?.message ?? String(e) })
        }
      )
      const finish = (final: ActorStatus | null) => {
        port1.close()
        // a Stop (or Remove) is answered once the actor has stopped; its reply may still be on
        // its way when the task's result arrives: the final status is that answer
        for (const p of pending.values()) {
          if (final !== null) p.resolve(final)
          else p.reject(new ActorDied({ botId: spec.botId, where: "actor", name: "Gone", reason: "the actor has ended" }))
        }
        pending.clear()
      }
      done.then(finish, () => finish(null))

      const handle: ActorHandle = {
        botId: spec.botId,
        started: Promise.race([startedP, done]),
        done,
        send: (command) =>
          new Promise<ActorStatus>((resolve, reject) => {
            const requestId = nextId++
            pending.set(requestId, { resolve, reject })
            const msg: ToWorker = { _tag: "Command", requestId, command }
            port1.postMessage(msg)
          }),
        health: () => health,
        // no AbortSignal on the task: piscina gives an abortable task a thread of its own. A stuck
        // actor's thread is terminated instead; piscina rejects its tasks and replaces it.
        abort: () => {
          if (threadId !== null) void pool.threads.find((t) => t.threadId === threadId)?.terminate()
        }
      }
      return handle
    },
    close: async () => {
      if (closing) return
      closing = true
      await pool.destroy()
      for (const id of [...threads]) threadEnded(id)
    }
  }
}
