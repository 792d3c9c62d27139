import { withOpenedArchive } from "../privacy/sealingLog.js"
import { randomBytes } from "node:crypto"
import { BroadcastChannel } from "node:worker_threads"
import { Option, Redacted } from "effect"
import type { ActorHost } from "../actors/host.js"
import { makeInProcessHost } from "../actors/inProcessHost.js"
import { makeOwnerHosts } from "../actors/ownerHosts.js"
import { makePostgresEventArchive } from "../actors/postgresEventArchive.js"
import { makePoolHost } from "../actors/poolHost.js"
import type { BotfleetConfig } from "../config.js"
import { loadBotModules, moduleUrl } from "../telegram/bots/moduleLoader.js"
import { makeCallExecutor } from "../telegram/callExecutor.js"
import { withModelCalls } from "../ai/modelCalls.js"
import { makeSecretBox } from "../ai/secretBox.js"
import { handoffPortsOf, withHandoffs } from "../actors/handoffDelivery.js"
import { sendLimitsOf } from "../telegram/limits.pure.js"
import type { SendLimits } from "../telegram/limits.pure.js"
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
 * thread with its own Redis connections, bot kinds and Bot API sender; with BOT_MODULES and
 * OWNER_THREADS > 0, bots of owners' kinds run on a one-thread pool per owner (ownerHosts.ts).
 * Embedded mode (PGlite is one process) or WORKER_THREADS=0: the main thread, on the node's own
 * stores (no isolation: owner code there shares the node's fate).
 */
export const makeActorHost = async (
  config: BotfleetConfig,
  stores: NodeStores,
  o: {
    readonly vault: TokenVault
    readonly apiRootFor: (mode: BotProfile["mode"]) => string
    readonly sandboxApiRoot: string | null
    /** The model server of AI bots whose config names none: AI_BASE_URL, or the node's offline stub. */
    readonly aiBaseUrl?: string | null
    /** An owner's bots share the overflow thread: OWNER_THREADS is reached. */
    readonly onOverflow?: (ownerId: string) => void
  }
): Promise<{
  readonly host: ActorHost
  readonly threads: number
  /** Tells every Bot API sender of the node (this thread's, or each worker thread's) new limits (live settings). */
  readonly setSendLimits: (limits: SendLimits) => void
  /** The bot kinds, loaded on the main thread (config schemas are checked here). */
  readonly registry: Awaited<ReturnType<typeof loadBotModules>>
}> => {
  // loaded here first in every mode: a module that does not load stops the node at start, not each bot later
  const botModules = config.botModules.map(moduleUrl)
  const registry = await loadBotModules(botModules)
  const limits = sendLimitsOf(config.sendLimits)
  if (config.mode === "embedded" || config.workerThreads === 0 || Option.isNone(config.redisUrl)) {
    const sender = new Sender({ limits })
    // hydration reads what the hot log trimmed from the archive: opened like the log's events
    const archive = withOpenedArchive(makePostgresEventArchive(stores.sql), stores.keyCache)
    // model calls (AI replies) and handoffs (to the target's inbox) are recorded calls beside the Bot API's
    const executeCall = withHandoffs(
      withModelCalls(makeCallExecutor({ vault: o.vault, sender, apiRootFor: o.apiRootFor }), {
        box: makeSecretBox(config.secretKey),
        defaultBaseURL: () => o.aiBaseUrl ?? null,
        defaultApiKey: Option.getOrNull(config.aiApiKey)
      }),
      handoffPortsOf({ log: stores.hotLog, inbox: stores.inbox, archive })
    )
    return {
      registry,
      setSendLimits: (l) => sender.setLimits(l),
      host: makeInProcessHost({
        log: stores.hotLog,
        inbox: stores.inbox,
        snapshots: stores.snapshots,
        archive,
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
    aiBaseUrl: o.aiBaseUrl ?? null,
    aiApiKey: Option.isSome(config.aiApiKey) ? Redacted.value(config.aiApiKey.value) : null,
    botModules,
    sendLimits: limits,
    // one channel per node (several nodes may share a process in tests)
    settingsChannel: `botfleet:settings:${config.nodeId}:${randomBytes(4).toString("hex")}`
  }
  const channel = new BroadcastChannel(options.settingsChannel)
  channel.unref()
  const setup = { module: workerDepsModule, options }
  const shared = makePoolHost({ threads: config.workerThreads, botsPerThread: BOTS_PER_THREAD, setup })
  // owners' code on threads of their own: one owner's process.exit, uncaught throw or exhausted
  // heap ends that owner's thread, never the shared threads nor another owner's (ownerHosts.ts)
  const pool: ActorHost =
    config.ownerThreads === 0 || botModules.length === 0
      ? shared
      : makeOwnerHosts({
          shared,
          maxOwners: config.ownerThreads,
          open: () =>
            makePoolHost({ threads: 1, botsPerThread: BOTS_PER_THREAD, setup, resourceLimits: { maxOldGenerationSizeMb: config.ownerThreadHeapMb } }),
          onOverflow: (ownerId) => o.onOverflow?.(ownerId)
        })
  return {
    registry,
    setSendLimits: (l) => channel.postMessage({ _tag: "SendLimits", limits: l }),
    host: {
      ...pool,
      close: async () => {
        channel.close()
        await pool.close()
      }
    },
    threads: config.workerThreads
  }
}

