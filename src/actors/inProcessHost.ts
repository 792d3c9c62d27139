import { BotActor } from "./actor.js"
import type { ActorDeps } from "./actor.js"
import { ActorDied } from "./host.js"
import type { ActorHandle, ActorHost } from "./host.js"

/**
 * Actors on the calling thread: for tests, replay and the memory log (which one thread owns).
 * `abort` cannot interrupt JavaScript that is running: it fails `done` and kills the actor, which
 * then refuses to append anything (its successor shares the fence, so the fence alone would not).
 */
export const makeInProcessHost = (deps: ActorDeps): ActorHost => {
  const live = new Set<ActorHandle>()
  return {
    start: (spec) => {
      const actor = new BotActor(deps, spec)
      let markStarted!: (s: ReturnType<BotActor["status"]>) => void
      const started = new Promise<ReturnType<BotActor["status"]>>((resolve) => (markStarted = resolve))
      let abort!: (e: ActorDied) => void
      const aborted = new Promise<never>((_, reject) => (abort = reject))
      const done = Promise.race([
        actor.run(markStarted).catch((e: unknown) => {
          const err = e as { _tag?: string; name?: string; message?: string }
          throw new ActorDied({ botId: spec.botId, where: "actor", name: err?._tag ?? err?.name ?? "Error", reason: err?.message ?? String(e) })
        }),
        aborted
      ])
      const handle: ActorHandle = {
        botId: spec.botId,
        started: Promise.race([started, done]),
        done,
        send: (command) => actor.send(command),
        // the caller's thread is this thread: if we are asking, its event loop turns
        health: () => ({ beatAt: Date.now(), busySince: actor.health().busySince }),
        abort: (reason) => {
          actor.kill(reason)
          abort(new ActorDied({ botId: spec.botId, where: "actor", name: "Aborted", reason }))
        }
      }
      live.add(handle)
      done.then(() => live.delete(handle), () => live.delete(handle))
      return handle
    },
    close: async () => {
      await Promise.allSettled([...live].map((h) => h.done))
    }
  }
}
