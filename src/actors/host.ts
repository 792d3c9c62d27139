import { Data } from "effect"
import type { ActorCommand, ActorHealth, ActorStatus } from "./actor.js"
import type { ActorSpec } from "./worker/input.js"

export type { ActorSpec }

/** A running actor as its supervisor sees it, wherever it runs. */
export interface ActorHandle {
  readonly botId: string
  /** Resolves once the actor has hydrated and recorded BotStarted. Rejects like `done` if it dies first. */
  readonly started: Promise<ActorStatus>
  /** Resolves with the final status after a graceful stop; rejects with why the actor died. */
  readonly done: Promise<ActorStatus>
  /** Runs a command between inputs; rejects if the actor refuses it or is gone. */
  readonly send: (command: ActorCommand) => Promise<ActorStatus>
  /** The last heartbeat seen (immediate in-process, ~every 500 ms from a worker). */
  readonly health: () => ActorHealth
  /** Ends the actor without draining (a stuck actor). In the pool this kills its whole thread. */
  readonly abort: (reason: string) => void
}

/** Whose code a bot runs: hosts that isolate owners (ownerHosts.ts) place it by this. */
export interface Placement {
  readonly ownerId: string
  /** The bot's kind: "builtin" (the fleet's own code) or an owner's BOT_MODULES kind. */
  readonly kind: string
}

/**
 * Where actors run. Two implementations: in-process (tests, replay) and a piscina pool (each bot
 * one long-lived task on one thread, its state never leaving that thread); ownerHosts.ts routes
 * between several of them by owner.
 */
export interface ActorHost {
  /** `placement`, when known, lets a host keep owners' code apart; hosts that do not care ignore it. */
  readonly start: (spec: ActorSpec, placement?: Placement) => ActorHandle
  /** Stops accepting actors and ends the threads; supervisors drain their actors first. */
  readonly close: () => Promise<void>
}

/** The actor died: its thread crashed (exit, uncaught throw, out of memory), or it gave up itself. */
export class ActorDied extends Data.TaggedError("ActorDied")<{
  readonly botId: string
  /** "thread": the worker thread died under it; "actor": the actor stopped on an error. */
  readonly where: "thread" | "actor"
  readonly name: string
  readonly reason: string
}> {
  override get message() {
    return `actor ${this.botId} died (${this.where}): ${this.name}: ${this.reason}`
  }
}
