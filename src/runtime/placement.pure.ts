/*
 * Which node runs which bot, when several share a fleet: rendezvous (highest random weight)
 * hashing with bounded loads. Every node computes the same answer from the same inputs (the
 * fleet directory's bots, the live nodes, the refusals), with no coordination; no bot moves while
 * those stay the same, and a node joining or leaving moves mostly the bots it wins or held. The
 * bound keeps every node within one bot of an equal share, which plain rendezvous hashing does not
 * (its spread is binomial: ±8% of a third of 1,000 bots is one standard deviation). The lease, not
 * this, decides who may write: placement only tells a node which leases to go for.
 */

/** A node as placement sees it. */
export interface PlacementNode {
  readonly nodeId: string
}

/** FNV-1a (32 bits) then a murmur3 finalizer: FNV alone mixes the last characters poorly. */
const weight = (nodeId: string, botId: string): number => {
  let h = 0x811c9dc5
  const s = `${nodeId}\u0000${botId}`
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/**
 * The node that should run `botId`: the highest weight among `nodes`, skipping the nodes in
 * `refusedBy` (they cannot read the bot's stream). Ties (rare) go to the smaller node id, so
 * every node agrees. null when no node is left.
 */
export const ownerOf = (botId: string, nodes: ReadonlyArray<PlacementNode>, refusedBy: ReadonlySet<string> = new Set()): string | null => {
  let best: string | null = null
  let bestWeight = -1
  for (const n of nodes) {
    if (refusedBy.has(n.nodeId)) continue
    const w = weight(n.nodeId, botId)
    if (w > bestWeight || (w === bestWeight && best !== null && n.nodeId < best)) {
      best = n.nodeId
      bestWeight = w
    }
  }
  return best
}

/**
 * Every bot's node: bots in id order, each to the highest-weight node (among those that did not
 * refuse it) that still has room for its share (floor or ceil of bots / nodes). A bot every node refused is left out.
 */
export const assign = (
  bots: ReadonlyArray<string>,
  nodes: ReadonlyArray<string>,
  refusals: ReadonlyMap<string, ReadonlySet<string>> = new Map()
): Map<string, string> => {
  const out = new Map<string, string>()
  const ids = [...new Set(nodes)].sort()
  if (ids.length === 0) return out
  const sorted = [...new Set(bots)].sort()
  // shares of floor or ceil bots: only `extra` nodes may take the ceil, so the shares add up
  // exactly and no node ends two bots below another
  const floor = Math.floor(sorted.length / ids.length)
  const extra = sorted.length % ids.length
  const load = new Map(ids.map((id) => [id, 0]))
  let atCeil = 0
  const hasRoom = (id: string) => load.get(id)! < floor || (load.get(id)! === floor && atCeil < extra)
  for (const bot of sorted) {
    const refused = refusals.get(bot)
    const ranked = ids
      .filter((id) => !refused?.has(id))
      .map((id) => ({ id, w: weight(id, bot) }))
      .sort((a, b) => b.w - a.w || (a.id < b.id ? -1 : 1))
    // refusals can leave every node it may go to full: then the first choice, full or not
    const pick = ranked.find((r) => hasRoom(r.id)) ?? ranked[0]
    if (!pick) continue
    out.set(bot, pick.id)
    const n = load.get(pick.id)! + 1
    load.set(pick.id, n)
    if (n === floor + 1) atCeil++
  }
  return out
}

/** A heartbeat older than this many milliseconds marks a node as gone (its leases have lapsed by then too). */
export const isLive = (n: { readonly heartbeatAgeMs: number; readonly leaseTtlMs: number; readonly stopped: boolean }): boolean =>
  !n.stopped && n.heartbeatAgeMs <= n.leaseTtlMs
