import { Duration, Effect, Either } from "effect"
import type { Scope } from "effect"
import type { Supervisor } from "../actors/supervisor.js"
import { makeFleetDirectory } from "./fleetDirectory.js"
import type { NodeRegistry } from "./nodeRegistry.js"
import type { SqlClient } from "../db/sql.js"
import { assign, ownerOf } from "./placement.pure.js"

/**
 * This node's view of who runs what: the live nodes and the refusals, as last read from the
 * registry. `mine` is what the supervisor asks before going for a lease. Until the first read it
 * answers true for every bot (one node, or a registry that cannot be read: the old behaviour, where
 * the lease alone decides). The node itself always counts as live: it knows it is.
 */
export interface Placement {
  readonly mine: (botId: string) => boolean
  readonly update: (view: PlacementView) => void
  /** This node refused the bot (it cannot read its stream): placed among the others from now on. */
  readonly refuse: (botId: string) => void
}

export interface PlacementView {
  readonly liveNodes: ReadonlyArray<string>
  readonly refusals: ReadonlyMap<string, ReadonlySet<string>>
  /** The fleet directory: every node places the same list, so they all agree. */
  readonly bots: ReadonlyArray<string>
}

export const makePlacement = (nodeId: string): Placement => {
  let nodes: Array<{ nodeId: string }> | null = null
  let assigned = new Map<string, string>()
  let refusals = new Map<string, Set<string>>()
  const localRefusals = new Set<string>()
  let last: PlacementView | null = null
  const place = (view: PlacementView) => {
    const ids = new Set(view.liveNodes)
    ids.add(nodeId)
    nodes = [...ids].map((id) => ({ nodeId: id }))
    refusals = new Map([...view.refusals].map(([bot, by]) => [bot, new Set(by)]))
    // a refusal made here but not readable back yet (the write may have failed) still counts
    for (const bot of localRefusals) refusals.set(bot, new Set([...(refusals.get(bot) ?? []), nodeId]))
    assigned = assign(view.bots, [...ids], refusals)
  }
  return {
    mine: (botId) => {
      const refused = refusals.get(botId)
      if (refused?.has(nodeId)) return false
      if (nodes === null) return true
      // a bot listed since the last look: plain rendezvous hashing until the next one
      const owner = assigned.get(botId) ?? ownerOf(botId, nodes, refused)
      return owner === nodeId
    },
    update: (view) => {
      last = view
      place(view)
    },
    refuse: (botId) => {
      localRefusals.add(botId)
      if (last) place(last)
      else refusals.set(botId, new Set([...(refusals.get(botId) ?? []), nodeId]))
    }
  }
}

/** Reads the registry into the placement; false when it could not be read (the last view stays). */
export const refreshPlacement = (registry: NodeRegistry, sql: SqlClient, placement: Placement) =>
  Effect.gen(function* () {
    const nodes = yield* Effect.either(registry.nodes)
    const refusals = yield* Effect.either(registry.refusals)
    const bots = yield* Effect.either(makeFleetDirectory(sql).list)
    if (Either.isLeft(nodes) || Either.isLeft(refusals) || Either.isLeft(bots)) return false
    placement.update({ liveNodes: nodes.right.filter((n) => n.live).map((n) => n.nodeId), refusals: refusals.right, bots: bots.right })
    return true
  })

/**
 * Keeps this node's place in the fleet, every `everyMs` (the lease renewal period): beats (with the
 * number of bots it holds), reads who else is live, and hands over the bots it holds that belong to
 * another node now, at most `budget()` per round so a node joining a busy fleet takes its share
 * gradually (each handover drains the bot: BotStopped, snapshot, lease released; the new owner is
 * already polling for that lease). Bots that became this node's are taken by the supervisor.
 */
export const runBalancer = (o: {
  readonly nodeId: string
  readonly registry: NodeRegistry
  readonly sql: SqlClient
  readonly placement: Placement
  readonly supervisor: Supervisor
  readonly everyMs: number
  /** Handovers per round: the activation budget over the round. */
  readonly budget: () => number
}): Effect.Effect<never, never, Scope.Scope> =>
  Effect.gen(function* () {
    // handovers run beside the loop: a drain takes seconds, and a heartbeat late past the TTL
    // would make the others count this node out (and take its bots) while it is merely busy
    const handingOver = new Set<string>()
    for (;;) {
      yield* Effect.sleep(Duration.millis(o.everyMs))
      const held = yield* o.supervisor.held
      yield* Effect.ignore(o.registry.heartbeat(o.nodeId, held.length))
      if (!(yield* refreshPlacement(o.registry, o.sql, o.placement))) continue
      const leaving = held.filter((botId) => !handingOver.has(botId) && !o.placement.mine(botId)).slice(0, Math.max(1, o.budget()))
      if (leaving.length === 0) continue
      yield* Effect.logInfo(`handing ${leaving.length} bot(s) over to the nodes they belong to now`)
      for (const botId of leaving) {
        handingOver.add(botId)
        yield* Effect.forkScoped(o.supervisor.handOver(botId).pipe(Effect.ensuring(Effect.sync(() => handingOver.delete(botId)))))
      }
    }
  })
