import { BroadcastChannel } from "node:worker_threads"
import type { ActorDeps } from "../actors/actor.js"
import { createActorDeps as createRedisActorDeps } from "../actors/redisActorDeps.js"
import { handoffPortsOf, withHandoffs } from "../actors/handoffDelivery.js"
import { instrumentInbox, instrumentLog } from "../metrics/instrumentStores.js"
import { loadBotModules } from "../telegram/bots/moduleLoader.js"
import { makeCallExecutor } from "../telegram/callExecutor.js"
import type { SendLimits } from "../telegram/limits.pure.js"
import { Sender } from "../telegram/sender.js"
import { makeTokenVault } from "../telegram/tokenVault.js"
import { withModelCalls } from "../ai/modelCalls.js"
import { makeSecretBox } from "../ai/secretBox.js"
import { Redacted } from "effect"
import { makePgSql } from "../db/pgSql.js"
import { openUserKeys, withOpenedArchive, withSealing } from "../privacy/sealingLog.js"

/** What each worker thread of a node's pool is built from: plain data, cloned into the thread. */
export interface FleetWorkerOptions {
  readonly redisUrl: string
  readonly prefix: string
  readonly partitions: number
  /** DATABASE_URL: each thread reads the events archive through a small pool of its own (none: no archive). */
  readonly databaseUrl: string | null
  /** The token vault's key, base64: the thread opens each bot's token itself, only for its Bot API client. */
  readonly secretKey: string
  readonly telegramApiRoot: string
  /** The node's Bot API sandbox, if it runs one: sandbox-mode bots talk to it. */
  readonly sandboxApiRoot: string | null
  /** The model server of AI bots whose config names none (AI_BASE_URL or the node's stub); null: none. */
  readonly aiBaseUrl: string | null
  /** AI_API_KEY (secret, like secretKey: it opens nothing but the model server). */
  readonly aiApiKey: string | null
  /** BOT_MODULES as file: URLs (the thread's working directory is not the node's concern). */
  readonly botModules: ReadonlyArray<string>
  /** The sending limits at start. */
  readonly sendLimits: SendLimits
  /** The node's BroadcastChannel for live settings (new sending limits reach every thread's sender through it). */
  readonly settingsChannel: string
}

const isSendLimits = (m: unknown): m is { readonly _tag: "SendLimits"; readonly limits: SendLimits } =>
  typeof m === "object" && m !== null && (m as { _tag?: unknown })._tag === "SendLimits" && typeof (m as { limits?: unknown }).limits === "object"

/**
 * A worker thread's ports for the fleet's bots: the Redis log, inboxes and snapshots, the events
 * archive (Postgres, for histories Redis trimmed), the bot
 * kinds (built-in and registered modules), and a Bot API port of its own: a bot lives on one
 * thread, so that thread's sender holds the bot's rate limits.
 */
export const createActorDeps = async (o: FleetWorkerOptions): Promise<ActorDeps> => {
  const base = await createRedisActorDeps({ url: o.redisUrl, prefix: o.prefix, partitions: o.partitions, databaseUrl: o.databaseUrl })
  const registry = await loadBotModules(o.botModules)
  const sender = new Sender({ limits: o.sendLimits })
  const channel = new BroadcastChannel(o.settingsChannel)
  channel.unref()
  channel.onmessage = (e) => {
    const m = (e as { data?: unknown }).data
    if (isSendLimits(m)) sender.setLimits(m.limits)
  }
  const key = Buffer.from(o.secretKey, "base64")
  const botCalls = makeCallExecutor({
    vault: makeTokenVault(key),
    sender,
    apiRootFor: (mode) => (mode === "sandbox" && o.sandboxApiRoot !== null ? o.sandboxApiRoot : o.telegramApiRoot)
  })
  // model calls (AI replies) are recorded calls too, made from the thread that runs the bot
  // handoffs go to the target's inbox on this thread's own connections
  const executeCall = withHandoffs(
    withModelCalls(botCalls, {
      box: makeSecretBox(key),
      defaultBaseURL: () => o.aiBaseUrl,
      defaultApiKey: o.aiApiKey === null ? null : Redacted.make(o.aiApiKey)
    }),
    handoffPortsOf(base)
  )
  // personal fields sealed on append, opened on read, with this thread's own key cache (its
  // entries dropped by the node's forget announcements, keyCache.ts); no database: nothing sealed
  const sealing = o.databaseUrl === null ? null : openUserKeys(makePgSql(o.databaseUrl, { max: 2, applicationName: "botfleet-user-keys" }), key).cache
  const log = sealing === null ? base.log : withSealing(base.log, sealing)
  const archive = sealing === null || base.archive === undefined ? base.archive : withOpenedArchive(base.archive, sealing)
  // measured on this thread; its heartbeats carry the measurements to the main thread (metrics)
  return { ...base, ...(archive ? { archive } : {}), log: instrumentLog(log, "redis"), inbox: instrumentInbox(base.inbox, "redis"), handlerFor: registry.handlerFor, executeCall }
}
