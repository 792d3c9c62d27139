import { Effect, Either, Option, Redacted } from "effect"
import type { Scope } from "effect"
import { makeSupervisor } from "../actors/supervisor.js"
import type { Supervisor } from "../actors/supervisor.js"
import type { BotfleetConfig } from "../config.js"
import { startIngress } from "../telegram/ingress.js"
import { startSandbox } from "../telegram/sandbox/server.js"
import type { Sandbox } from "../telegram/sandbox/server.js"
import { makeTokenVault } from "../telegram/tokenVault.js"
import { webhookSecretFor } from "../telegram/webhookSecret.js"
import { loadBotProfile } from "./botProfile.js"
import type { BotProfile } from "./botProfile.js"
import { DEMO_BOTS, seedDemoFleet } from "./demoFleet.js"
import { makeFleetDirectory } from "./fleetDirectory.js"
import { runNodeProjections } from "./projections.js"
import { runNodeTrimmer } from "./trimming.js"
import { openStores, StoresUnavailable } from "./stores.js"
import { makeActorHost } from "./actorHost.js"
import { serveControl } from "./control.js"
import { makeTelegramHost } from "./telegramHost.js"
import type { NodeStores } from "./stores.js"

export interface NodeOptions {
  /** Run the Bot API sandbox in this process (sandbox-mode bots talk to it). */
  readonly sandbox: boolean
  /** Seed the demo fleet (once; idempotent) and run it. Needs the sandbox. */
  readonly demo: boolean
  /** Sandbox port; default HTTP_PORT + 1 (0, any free port, when HTTP_PORT is 0). */
  readonly sandboxPort?: number
}

/** What a started node tells its operator. */
export interface RunningNode {
  readonly config: BotfleetConfig
  /** The webhook ingress (`POST <url>/telegram/<botId>`). */
  readonly ingressUrl: string
  readonly sandbox: Sandbox | null
  /** The bots this node supervises (each runs here while this node holds its lease). */
  readonly bots: ReadonlyArray<string>
  /** Demo bots by sandbox username (empty without the demo fleet). */
  readonly demoBots: ReadonlyArray<{ readonly botId: string; readonly username: string }>
  readonly supervisor: Supervisor
  readonly stores: NodeStores
  /** Starts supervising a bot registered after the node started (and lets the ingress take its updates). */
  readonly startBot: (botId: string) => Effect.Effect<void>
  /** Worker threads hosting the actors; 0: the main thread. */
  readonly actorThreads: number
}

/**
 * A polling bot's updates come through its poller, which runs only while its actor does: such a
 * bot is never passivated (nothing would wake it). Webhook and sandbox bots wake on their inbox.
 */
const pinnedFor = (profile: Either.Either<BotProfile, unknown>) => Either.isRight(profile) && profile.right.mode === "polling"

const startFailed = (what: string) => (cause: unknown) => new StoresUnavailable({ what, cause })

/**
 * One botfleet node, in the scope: stores (migrated) → projections and the hot-log trimmer → sandbox (optional) → webhook
 * ingress → the actor supervisor over the Telegram host → the fleet's bots. Closing the scope
 * shuts down in the reverse order: every bot drains (in-flight input finished with its Bot API
 * calls, BotStopped) and its lease is released, then the servers close, then the stores.
 */
export const startNode = (config: BotfleetConfig, options: NodeOptions): Effect.Effect<RunningNode, StoresUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    yield* Effect.logInfo("botfleet node starting").pipe(Effect.annotateLogs({ mode: config.mode, nodeId: config.nodeId, dataDir: config.dataDir }))
    const stores = yield* openStores(config)
    const vault = makeTokenVault(config.secretKey)
    const directory = makeFleetDirectory(stores.sql)
    const embedded = config.mode === "embedded"

    yield* Effect.forkScoped(runNodeProjections({ log: stores.hotLog, sql: stores.sql, embedded }))
    yield* Effect.forkScoped(runNodeTrimmer(config, stores, embedded ? "embedded" : config.nodeId))

    const sandbox = options.sandbox
      ? yield* Effect.acquireRelease(
          Effect.tryPromise({
            try: () => startSandbox({ port: options.sandboxPort ?? (config.httpPort === 0 ? 0 : config.httpPort + 1) }),
            catch: startFailed("the Bot API sandbox server")
          }),
          (s) => Effect.promise(() => s.close())
        )
      : null

    const known = new Set<string>()
    const secretFor = (botId: string) => webhookSecretFor(config.secretKey, botId)
    const ingress = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          startIngress({
            inbox: stores.inbox,
            botStatus: (botId) => Effect.succeed(known.has(botId) ? "running" : "unknown"),
            secretFor,
            ...(stores.dedupe ? { dedupe: stores.dedupe } : {}),
            port: config.httpPort,
            host: embedded ? "127.0.0.1" : "0.0.0.0"
          }),
        catch: startFailed(`the webhook ingress on port ${config.httpPort} (is the port free? set HTTP_PORT)`)
      }),
      (i) => Effect.promise(() => i.close())
    )
    const ingressUrl = ingress.url.replace("0.0.0.0", "127.0.0.1")

    /** The sandbox lives in memory: after a restart it learns each sandbox bot (and its token) again. */
    const ensureInSandbox = (p: BotProfile) => {
      if (p.mode !== "sandbox" || !sandbox) return
      const token = Redacted.value(p.token)
      try {
        sandbox.world.botByToken(token)
      } catch {
        sandbox.world.createBot({ username: p.name, token })
      }
    }
    /*
     * Embedded mode: one process per DATA_DIR (PGlite's folder), so leases left by a previous run
     * of this folder are ours to take back at once instead of waiting out their TTL (a stable lease
     * owner re-takes its own lease, keeping the fence: the old holder is gone).
     */
    const leaseOwner = embedded ? "embedded" : config.nodeId

    const apiRootFor = (mode: BotProfile["mode"]) => (mode === "sandbox" && sandbox ? sandbox.apiRoot : config.telegramApiRoot)
    const inner = yield* Effect.tryPromise({
      try: () => makeActorHost(config, stores, { vault, apiRootFor, sandboxApiRoot: sandbox?.apiRoot ?? null }),
      catch: startFailed("the bot actors' host (BOT_MODULES, WORKER_THREADS)")
    })
    yield* Effect.logInfo(inner.threads > 0 ? `bot actors on ${inner.threads} worker threads` : "bot actors on the main thread")
    const host = makeTelegramHost({
      inner: inner.host,
      log: stores.log,
      inbox: stores.inbox,
      vault,
      offsets: stores.offsets,
      apiRootFor,
      ...(sandbox ? { sandboxWebhook: { publicUrl: ingressUrl, secretFor } } : {}),
      ...(Option.isSome(config.publicUrl) ? { publicWebhook: { publicUrl: config.publicUrl.value, secretFor } } : {}),
      onProfile: ensureInSandbox,
      onError: (botId, e) =>
        Effect.runFork(Effect.logWarning(`bot ${botId}: ${e instanceof Error ? e.message : String(e)}`).pipe(Effect.annotateLogs({ botId })))
    })
    yield* Effect.addFinalizer(() => Effect.promise(() => host.close()))
    const supervisor = yield* makeSupervisor({
      nodeId: leaseOwner,
      host,
      log: stores.log,
      inbox: stores.inbox,
      leaseTtlMs: config.leaseTtlMs,
      leaseRenewMs: config.leaseRenewMs,
      activationsPerSecond: config.activationsPerSecond,
      passivateAfterMs: config.passivateAfterMs,
      ...(config.maxResidentBots > 0 ? { maxResident: config.maxResidentBots } : {}),
      actor: { snapshotEvery: config.snapshotEvery, idleWaitMs: 500 }
    })
    yield* Effect.addFinalizer(() =>
      Effect.logInfo("botfleet node draining: finishing in-flight inputs, releasing leases").pipe(
        Effect.zipRight(supervisor.drain),
        Effect.zipRight(Effect.logInfo("botfleet node drained"))
      )
    )

    const demoBots: Array<{ botId: string; username: string }> = []
    if (options.demo && sandbox) {
      const seeded = yield* seedDemoFleet({ log: stores.log, vault, directory, nodeId: leaseOwner }).pipe(Effect.mapError(startFailed("the demo fleet")))
      if (seeded.length > 0) yield* Effect.logInfo(`demo fleet registered: ${seeded.join(", ")}`)
      demoBots.push(...DEMO_BOTS.map((b) => ({ botId: b.botId, username: b.username })))
    }

    const listed = yield* directory.list.pipe(Effect.mapError(startFailed("the fleet directory")))
    const bots: string[] = []
    for (const botId of listed) {
      // without the sandbox, a sandbox bot (fake token) has nowhere to talk to; with it, the bot is
      // in the sandbox at once, even while its lease is still held elsewhere
      const profile = yield* Effect.either(loadBotProfile(stores.log, vault, botId))
      if (profile._tag === "Right") {
        if (profile.right.mode === "sandbox" && !sandbox) continue
        ensureInSandbox(profile.right)
      }
      known.add(botId)
      bots.push(botId)
      yield* supervisor.startBot(botId, { pinned: pinnedFor(profile) })
    }
    yield* Effect.logInfo("botfleet node ready").pipe(
      Effect.annotateLogs({ ingress: ingressUrl, sandbox: sandbox?.apiRoot ?? null, bots: bots.length })
    )
    const startBot = (botId: string) =>
      Effect.gen(function* () {
        known.add(botId)
        const profile = yield* Effect.either(loadBotProfile(stores.log, vault, botId))
        yield* supervisor.startBot(botId, { pinned: pinnedFor(profile) })
      })
    if (!embedded && Option.isSome(config.redisUrl)) {
      yield* serveControl({
        redisUrl: Redacted.value(config.redisUrl.value),
        prefix: config.redisPrefix,
        nodeId: leaseOwner,
        supervisor,
        startBot,
        forgetBot: (botId) => void known.delete(botId)
      })
    }
    return { config, ingressUrl, sandbox, bots, demoBots, supervisor, stores, startBot, actorThreads: inner.threads }
  })
