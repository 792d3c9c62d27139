import { BroadcastChannel, isMainThread, threadId } from "node:worker_threads"
import { Effect, Runtime } from "effect"
import type { Scope } from "effect"
import { makeDependencyHealth } from "./dependencyHealth.js"
import type { DependencyHealth, HealthTransition } from "./dependencyHealth.js"

/*
 * This process's dependency record (dependencyHealth.ts), one per thread, and how its transitions
 * reach the log. On the main thread they are logged through the node's Effect logger (the JSON
 * lines of `botfleet run`); a worker thread (the actors' pool) has no logger of its own, so it
 * posts its transitions on a BroadcastChannel and the main thread logs them (with the thread's id)
 * and keeps them in its record: the main thread's record covers every thread of the process.
 */

const CHANNEL = "botfleet:dependency-health"

type Runner = (effect: Effect.Effect<void>) => void
const runners: Runner[] = []
const runLog: Runner = (effect) => {
  const runner = runners[runners.length - 1]
  if (runner) runner(effect)
  else Effect.runFork(effect)
}

/** The log line of a transition: one per group and state change, the address, never a password. */
export const transitionLog = (t: HealthTransition): Effect.Effect<void> => {
  const base = { dependency: t.key.dependency, client: t.key.client, address: t.key.address, ...(t.key.thread !== 0 ? { thread: t.key.thread } : {}) }
  return t._tag === "Down"
    ? Effect.logWarning(`${t.key.dependency} unreachable`).pipe(Effect.annotateLogs({ ...base, error: t.error, since: t.at }))
    : Effect.logInfo(`${t.key.dependency} back`).pipe(Effect.annotateLogs({ ...base, downForMs: t.downForMs, errorsWhileDown: t.errors }))
}

let channel: BroadcastChannel | null = null
const workerChannel = (): BroadcastChannel => {
  if (!channel) {
    channel = new BroadcastChannel(CHANNEL)
    channel.unref()
  }
  return channel
}

/**
 * The record of this thread (on the main thread: of the whole process). Drivers report into it
 * (redisHealth.ts, pgSql.ts); a `/ready` endpoint or `botfleet status` reads `dependencies()`.
 */
export const processHealth: DependencyHealth = makeDependencyHealth({
  onTransition: (t) => {
    if (isMainThread) runLog(transitionLog(t))
    else workerChannel().postMessage(t)
  }
})

if (isMainThread) {
  const fromWorkers = new BroadcastChannel(CHANNEL)
  fromWorkers.onmessage = (event) => {
    const t = (event as { data: HealthTransition }).data
    processHealth.apply(t)
    runLog(transitionLog(t))
  }
  // listening must never keep a finished process alive
  fromWorkers.unref()
}

/** The thread id a driver stamps on its reports (0 on the main thread). */
export const currentThread = (): number => (isMainThread ? 0 : threadId)

/**
 * For the scope's life, dependency transitions are logged through the caller's runtime (its
 * logger, level and annotations) instead of Effect's default logger. Nested uses stack.
 */
export const logDependencyHealthHere: Effect.Effect<void, never, Scope.Scope> = Effect.gen(function* () {
  const runtime = yield* Effect.runtime<never>()
  const runner: Runner = (effect) => void Runtime.runFork(runtime)(effect)
  yield* Effect.acquireRelease(
    Effect.sync(() => runners.push(runner)),
    () =>
      Effect.sync(() => {
        const i = runners.lastIndexOf(runner)
        if (i >= 0) runners.splice(i, 1)
      })
  )
})
