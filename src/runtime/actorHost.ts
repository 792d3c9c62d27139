import { Option, Redacted } from "effect"
import type { ActorHost } from "../actors/host.js"
import { makeInProcessHost } from "../actors/inProcessHost.js"
import { makePostgresEventArchive } from "../actors/postgresEventArchive.js"
import { makePoolHost } from "../actors/poolHost.js"
import type { BotfleetConfig } from "../config.js"
import { loadBotModules, moduleUrl } from "../telegram/bots/moduleLoader.js"
import { makeCallExecutor } from "../telegram/callExecutor.js"
import { Sender } from "../telegram/sender.js"
import type { TokenVault } from "../telegram/tokenVault.js"
import type { BotProfile } from "./botProfile.js"
import type { FleetWorkerOptions } from "./fleetWorkerDeps.js"
import type { NodeStores } from "./stores.js"

const here = new URL(import.meta.url)
const workerDepsModule = new URL(`./fleetWorkerDeps.${here.pathname.endsWith(".ts") ? "ts" : "js"}`, here).href

/**
 * Actors hosted by a thread never leave it, and a thread hosts as many as the node runs: the
 * supervisor (MAX_RESIDENT_BOTS, passivation) decides how many are resident, not the pool.
 */
const BOTS_PER_THREAD = 100_000

/**
 * Where a node's actors run. Production mode with WORKER_THREADS > 0: a piscina pool, each
 * thread with its own Redis connections, bot kinds and Bot API sender. Embedded mode (PGlite is
 * one process) or WORKER_THREADS=0: the main thread, on the node's own stores.
 */
export const makeActorHost = async (
  config: BotfleetConfig,
  stores: NodeStores,
  o: { readonly vault: TokenVault; readonly apiRootFor: (mode: BotProfile["mode"]) => string; readonly sandboxApiRoot: string | null }
): Promise<{ readonly host: ActorHost; readonly threads: number }> => {
  // loaded here first in every mode: a module that does not load stops the node at start, not each bot later
  const botModules = config.botModules.map(moduleUrl)
  const registry = await loadBotModules(botModules)
  if (config.mode === "embedded" || config.workerThreads === 0 || Option.isNone(config.redisUrl)) {
    const executeCall = makeCallExecutor({ vault: o.vault, sender: new Sender(), apiRootFor: o.apiRootFor })
    return {
      host: makeInProcessHost({
        log: stores.hotLog,
        inbox: stores.inbox,
        snapshots: stores.snapshots,
        archive: makePostgresEventArchive(stores.sql),
        handlerFor: registry.handlerFor,
        executeCall
      }),
      threads: 0
    }
  }
  const options: FleetWorkerOptions = {
    redisUrl: Redacted.value(config.redisUrl.value),
    prefix: config.redisPrefix,
    partitions: config.partitions,
    databaseUrl: Option.isSome(config.databaseUrl) ? Redacted.value(config.databaseUrl.value) : null,
    secretKey: Buffer.from(Redacted.value(config.secretKey)).toString("base64"),
    telegramApiRoot: config.telegramApiRoot,
    sandboxApiRoot: o.sandboxApiRoot,
    botModules
  }
  return {
    host: makePoolHost({ threads: config.workerThreads, botsPerThread: BOTS_PER_THREAD, setup: { module: workerDepsModule, options } }),
    threads: config.workerThreads
  }
}
