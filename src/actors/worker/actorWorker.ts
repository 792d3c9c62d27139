import type { MessagePort } from "node:worker_threads"
import { threadId, workerData } from "node:worker_threads"
import { Schema } from "effect"
import { takeThreadStats } from "../../metrics/threadStats.js"
import { BotActor } from "../actor.js"
import type { ActorDeps } from "../actor.js"
import { ActorSpec, ToWorker } from "./input.js"
import type { WorkerSetup } from "./input.js"
import { loadModule } from "./loadModule.js"
import { toErrorInfo } from "./output.js"
import type { FromWorker, TaskResult } from "./output.js"

/*
 * The piscina worker: each task is ONE bot's actor for its whole life. The task's promise stays
 * pending until the actor stops, so the bot's state never leaves this thread and piscina never
 * hands the thread's slot to another task meanwhile (pool runs with atomics disabled, so idle
 * waiting never blocks the event loop other actors on this thread need).
 */

let deps: Promise<ActorDeps> | null = null
const loadDeps = () => {
  const setup = (workerData as { setup: WorkerSetup }).setup
  return loadModule<{ createActorDeps: (o: unknown) => Promise<ActorDeps> }>(setup.module).then((m) => m.createActorDeps(setup.options))
}

const live = new Map<BotActor, MessagePort>()
const post = (port: MessagePort, msg: FromWorker) => port.postMessage(msg)
// one timer per thread, not per bot: heartbeats prove the thread's event loop is turning
setInterval(() => {
  // the thread's measurements ride on one heartbeat: the longest-lived actor's
  let stats = live.size > 0 ? takeThreadStats() : null
  for (const [actor, port] of live) {
    post(port, { _tag: "Heartbeat", ...actor.health(), ...(stats ? { stats } : {}) })
    stats = null
  }
}, 500).unref()

const decodeSpec = Schema.decodeUnknownSync(ActorSpec)
const decodeMessage = Schema.decodeUnknownSync(ToWorker)

export default async function runBot(task: { spec: unknown; port: MessagePort }): Promise<TaskResult> {
  const { port } = task
  try {
    const spec = decodeSpec(task.spec)
    deps ??= loadDeps()
    const actor = new BotActor(await deps, spec)
    live.set(actor, port)
    port.on("message", (raw: unknown) => {
      let msg: ToWorker
      try {
        msg = decodeMessage(raw)
      } catch {
        return // not ours: the main thread only sends schema'd commands
      }
      actor.send(msg.command).then(
        (status) => post(port, { _tag: "Reply", requestId: msg.requestId, status }),
        (e: unknown) => post(port, { _tag: "Refused", requestId: msg.requestId, error: toErrorInfo(e) })
      )
    })
    try {
      const status = await actor.run((status) => post(port, { _tag: "Started", status, threadId }))
      return { _tag: "Stopped", status }
    } finally {
      live.delete(actor)
    }
  } catch (e) {
    return { _tag: "Died", error: toErrorInfo(e) }
  } finally {
    port.close()
  }
}
