import type { Effect } from "effect"
import type { Supervisor } from "../actors/supervisor.js"
import type { NodeStores } from "../runtime/stores.js"

/** What the embedded node lends a CLI command it runs for another process (hosted.ts). */
export interface HostedNode {
  readonly stores: NodeStores
  /** The node's supervisor once it runs (null while it starts). */
  readonly node: () => { readonly supervisor: Supervisor; readonly startBot: (botId: string) => Effect.Effect<void> } | null
}
