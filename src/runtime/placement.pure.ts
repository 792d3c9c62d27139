/*
 * Which node runs which bot, when several share a fleet: rendezvous (highest random weight)
 * hashing. Every node computes the same answer from the same list of live nodes, with no
 * coordination; adding or removing a node moves only the bots that node wins or held (about 1/n
 * of the fleet), and no bot moves while the list stays the same. The lease, not this, decides who
 * may write: placement only tells a node which leases to go for.
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

/** A heartbeat older than this many milliseconds marks a node as gone (its leases have lapsed by then too). */
export const isLive = (n: { readonly heartbeatAgeMs: number; readonly leaseTtlMs: number; readonly stopped: boolean }): boolean =>
  !n.stopped && n.heartbeatAgeMs <= n.leaseTtlMs
