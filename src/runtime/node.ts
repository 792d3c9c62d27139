import { Duration, Effect, Either, Fiber, Option, Redacted, Runtime } from "effect"
import type { LogLevel, Scope } from "effect"
import { makeSupervisor } from "../actors/supervisor.js"
import { verifyPeriodically } from "../audit/periodic.js"
import { missingRoleGrants } from "../db/roles.js"
import { anchorKeyFrom } from "../projections/auditChain.js"
import type { Supervisor } from "../actors/supervisor.js"
import { logDependencyHealthHere } from "../health/processHealth.js"
import type { BotfleetConfig } from "../config.js"
import { learnBotKind } from "../metrics/botKinds.js"
import { countProjected, countUpdateAccepted } from "../metrics/registry.js"
import type { CommittedBatch } from "../projections/projector.js"
import { startIngress } from "../telegram/ingress.js"
import { startSandbox } from "../telegram/sandbox/server.js"
import { startAiStub } from "../ai/stubServer.js"
import type { Sandbox } from "../telegram/sandbox/server.js"
import { makeTokenVault } from "../telegram/tokenVault.js"
import { webhookSecretFor } from "../telegram/webhookSecret.js"
import { loadBotProfile } from "./botProfile.js"
import type { BotProfile } from "./botProfile.js"
import { DEMO_BOTS, seedDemoFleet } from "./demoFleet.js"
import { makeFleetDirectory } from "./fleetDirectory.js"
import { observeNode } from "./observability.js"
import { nodeApi } from "./nodeApi.js"
import type { NodeCli } from "./nodeApi.js"
import { catchUpProjections, runNodeProjections } from "./projections.js"
import { runNodeTrimmer } from "./trimming.js"
import { runBroadcasts } from "../broadcast/runner.js"
import { openStores, StoresUnavailable } from "./stores.js"
import { makeActorHost } from "./actorHost.js"
import { serveControl } from "./control.js"
import { makeTelegramHost } from "./telegramHost.js"
import type { NodeStores } from "./stores.js"
import { applyLiveSettings } from "./applyLiveSettings.js"
import { makeLiveSettings } from "./liveSettings.js"
import type { LiveSettings } from "./liveSettings.js"
import { answerNodeRequest } from "./settingsControl.js"
import { runBackupSchedule } from "../ops/backups/scheduler.js"
import { makePlacement, refreshPlacement, runBalancer } from "./balancer.js"
import { makeNodeRegistry } from "./nodeRegistry.js"
import { nodeVersion, readableEventVersions } from "./nodeVersion.js"

export interface NodeOptions {
  /** Run the Bot API sandbox in this process (sandbox-mode bots talk to it). */
  readonly sandbox: boolean
  /** Seed the demo fleet (once; idempotent) and run it. Needs the sandbox. */
  readonly demo: boolean
  /** Sandbox port; default HTTP_PORT + 1 (0, any free port, when HTTP_PORT is 0). */
  readonly sandboxPort?: number
  /** The process logger's level switch (LOG_LEVEL changes live through it); absent: LOG_LEVEL changes only what `config` shows. */
  readonly logLevel?: { level: LogLevel.LogLevel }
  /**
   * The CLI, for commands other processes send while this embedded node holds DATA_DIR
   * (cli/remote/), run with `env` (the node's environment). Absent: such commands are refused.
   */
  readonly cli?: NodeCli
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
  /** The model server AI bots without their own use (AI_BASE_URL, or the offline stub started with the sandbox); null: none. */
  readonly aiBaseUrl: string | null
  readonly supervisor: Supervisor
  readonly stores: NodeStores
  /** Starts supervising a bot registered after the node started (and lets the ingress take its updates). */
  readonly startBot: (botId: string) => Effect.Effect<void>
  /** Worker threads hosting the actors; 0: the main thread. */
  readonly actorThreads: number
  /** The node's settings in effect, changeable without a restart (`botfleet config set`). */
  readonly settings: LiveSettings
}

/**
 * A polling bot's updates come through its poller, which runs only while its actor does: such a
 * bot is never passivated (nothing would wake it). Webhook and sandbox bots wake on their inbox.
 */
const pinnedFor = (profile: Either.Either<BotProfile, unknown>) => Either.isRight(profile) && profile.right.mode === "polling"

const startFailed = (what: string) => (cause: unknown) => new StoresUnavailable({ what, cause })

/**
 * One botfleet node, in the scope: stores (migrated) → role check → projections, the hot-log trimmer
 * and the periodic audit verification → sandbox (optional) → webhook ingress (with /metrics, /health, /ready) → the
 * actor supervisor over the Telegram host → the fleet's bots. Closing the scope shuts down in the
 * reverse order: /ready turns 503, every bot drains (in-flight input finished with its Bot API
 * calls, BotStopped) and its lease is released, the servers close, the projections catch up with
 * the log (the drain's events included), then the stores close.
 */
export const startNode = (config: BotfleetConfig, options: NodeOptions): Effect.Effect<RunningNode, StoresUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    // outages of Postgres and Redis are logged as this node's JSON lines, worker threads' included
    yield* logDependencyHealthHere
    yield* Effect.logInfo("botfleet node starting").pipe(Effect.annotateLogs({ mode: config.mode, nodeId: config.nodeId, dataDir: config.dataDir }))
    // callbacks from outside Effect log through the node's logger (JSON lines), not the default one
    const runtime = yield* Effect.runtime<never>()
    const logHere = (effect: Effect.Effect<void>) => void Runtime.runFork(runtime)(effect)
    const observed = observeNode(config, yield* openStores(config))
    const { stores, readiness } = observed
    const settings = makeLiveSettings(config)
    const vault = makeTokenVault(config.secretKey)
    const directory = makeFleetDirectory(stores.sql)
    const embedded = config.mode === "embedded"
    // the REST API's request lines: JSON log lines with the token id, never the token
    const api = nodeApi(config, stores, ({ message, ...fields }) => logHere(Effect.logInfo(String(message ?? "api request")).pipe(Effect.annotateLogs(fields))), options.cli)

    // the node works as botfleet's roles (db/roles.ts), whatever its login: refuse to start when
    // the login cannot take them, rather than stall every projector on a permission error
    const grants = yield* Effect.tryPromise({ try: () => missingRoleGrants(stores.sql), catch: startFailed("the database roles") })
    if (grants.length > 0) {
      return yield* new StoresUnavailable({
        what: "the database roles",
        cause: new Error(`the node's login cannot take the roles it works as; as a superuser run: ${grants.join(" ")}`)
      })
    }
    const onCommitted = (b: CommittedBatch) => countProjected(b.partition, b.events, b.kinds)
    const projecting = yield* Effect.forkScoped(runNodeProjections({ log: stores.hotLog, sql: stores.sql, embedded, onCommitted }))
    // runs after the bots drained and the servers closed (finalizers run in reverse), before the
    // stores close: without it the drain's last events stay unprojected and `status` shows the
    // partitions STALLED after a normal stop
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        yield* Fiber.interrupt(projecting)
        const caught = yield* catchUpProjections({ log: stores.hotLog, sql: stores.sql, onCommitted })
        if (caught.behind.length > 0) yield* Effect.logWarning(`projections of partitions ${caught.behind.join(", ")} are behind the log at stop; the next node start catches up`)
        else yield* Effect.logInfo(`projections caught up (${caught.projected} events at stop)`)
      })
    )
    if (config.auditVerifyEveryMs > 0) {
      yield* Effect.forkScoped(
        verifyPeriodically({ sql: stores.sql, anchorKey: anchorKeyFrom(Redacted.value(config.secretKey)), nodeId: config.nodeId, every: Duration.millis(config.auditVerifyEveryMs) })
      )
    }
    yield* Effect.forkScoped(runNodeTrimmer(config, stores, embedded ? "embedded" : config.nodeId))
    // broadcasts (docs/broadcasts.md): 60 messages waiting per bot at most, topped up twice a second
    yield* Effect.forkScoped(runBroadcasts({ sql: stores.sql, log: stores.log, inbox: stores.inbox }, { window: 60, every: Duration.millis(500) }))

    const sandbox = options.sandbox
      ? yield* Effect.acquireRelease(
          Effect.tryPromise({
            try: () => startSandbox({ port: options.sandboxPort ?? (config.httpPort === 0 ? 0 : config.httpPort + 1) }),
            catch: startFailed("the Bot API sandbox server")
          }),
          (s) => Effect.promise(() => s.close())
        )
      : null

    // the demo's AI bot needs a model: with the sandbox and no AI_BASE_URL, the offline stub answers
    const aiStub =
      options.sandbox && Option.isNone(config.aiBaseUrl)
        ? yield* Effect.acquireRelease(
            Effect.tryPromise({ try: () => startAiStub({ latencyMs: 300 }), catch: startFailed("the offline model stub") }),
            (s) => Effect.promise(() => s.close())
          )
        : null
    const aiBaseUrl = Option.getOrElse(config.aiBaseUrl, () => aiStub?.baseURL ?? null)

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
            ...(stores.ingress ? { store: stores.ingress } : {}),
            onAccepted: (botId) => countUpdateAccepted(botId, "webhook"),
            plugins: [...observed.plugins, api.plugin],
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
        sandbox.world.createBot({ username: p.name, token, fleetId: p.botId })
      }
    }
    /*
     * Embedded mode: one process per DATA_DIR (PGlite's folder), so leases left by a previous run
     * of this folder are ours to take back at once instead of waiting out their TTL (a stable lease
     * owner re-takes its own lease, keeping the fence: the old holder is gone).
     */
    const leaseOwner = embedded ? "embedded" : config.nodeId

    // the node registry (sql/0125): status shows every node; placement spreads the bots over the
    // live ones. Joining first, and reading the others, before any bot starts: a node that came up
    // beside others takes only its share instead of every lease it can get
    const registry = makeNodeRegistry(stores.sql)
    const placement = makePlacement(leaseOwner)
    const joined = yield* Effect.either(registry.register({ nodeId: leaseOwner, version: nodeVersion, eventVersions: readableEventVersions(), leaseTtlMs: config.leaseTtlMs }))
    if (Either.isLeft(joined)) yield* Effect.logWarning(`${joined.left.message}: this node places no bots (it goes for every lease) until it can read the registry`)
    else yield* refreshPlacement(registry, stores.sql, placement)

    const apiRootFor = (mode: BotProfile["mode"]) => (mode === "sandbox" && sandbox ? sandbox.apiRoot : config.telegramApiRoot)
    const inner = yield* Effect.tryPromise({
      try: () =>
        makeActorHost(config, stores, {
          vault,
          apiRootFor,
          sandboxApiRoot: sandbox?.apiRoot ?? null,
          aiBaseUrl,
          onOverflow: (ownerId) =>
            logHere(Effect.logWarning(`OWNER_THREADS (${config.ownerThreads}) reached: owner ${ownerId}'s bots share a thread with other owners past it`))
        }),
      catch: startFailed("the bot actors' host (BOT_MODULES, WORKER_THREADS)")
    })
    yield* Effect.logInfo(
      inner.threads === 0
        ? "bot actors on the main thread"
        : `bot actors on ${inner.threads} worker threads${config.ownerThreads > 0 && config.botModules.length > 0 ? `; owners' own kinds on a thread per owner (up to ${config.ownerThreads})` : ""}`
    )
    const host = makeTelegramHost({
      inner: inner.host,
      log: stores.log,
      snapshots: stores.snapshots,
      inbox: stores.inbox,
      vault,
      offsets: stores.offsets,
      apiRootFor,
      ...(sandbox ? { sandboxWebhook: { publicUrl: ingressUrl, secretFor } } : {}),
      ...(Option.isSome(config.publicUrl) ? { publicWebhook: { publicUrl: config.publicUrl.value, secretFor } } : {}),
      onProfile: (p) => {
        learnBotKind(p.botId, p.kind)
        ensureInSandbox(p)
      },
      onError: (botId, e) => logHere(Effect.logWarning(`bot ${botId}: ${e instanceof Error ? e.message : String(e)}`).pipe(Effect.annotateLogs({ botId })))
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
      actor: { snapshotEvery: config.snapshotEvery, idleWaitMs: 500, batchSize: config.actorBatch, maxResidentEntries: config.maxResidentEntries },
      placement,
      onUnreadable: (botId, reason) =>
        Effect.gen(function* () {
          placement.refuse(botId)
          yield* Effect.logWarning(`bot ${botId}: its stream holds events this version (${nodeVersion}) cannot read; left to a newer node: ${reason}`).pipe(
            Effect.annotateLogs({ botId })
          )
          yield* Effect.ignore(registry.refuse(botId, leaseOwner, reason))
        })
    })
    observed.attachSupervisor(supervisor)
    yield* applyLiveSettings({ settings, supervisor, setSendLimits: inner.setSendLimits, ...(options.logLevel ? { logLevel: options.logLevel } : {}) })
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => readiness.setPhase("draining")).pipe(
        Effect.zipRight(Effect.logInfo("botfleet node draining: finishing in-flight inputs, releasing leases")),
        Effect.zipRight(supervisor.drain),
        Effect.zipRight(Effect.logInfo("botfleet node drained"))
      )
    )

    yield* Effect.forkScoped(
      runBalancer({ nodeId: leaseOwner, registry, sql: stores.sql, placement, supervisor, everyMs: config.leaseRenewMs, budget: () => Math.ceil((settings.current().activationsPerSecond * config.leaseRenewMs) / 1000) })
    )
    // runs before the drain (finalizers run in reverse): the others count this node out at their
    // next look and poll for its leases, which the drain then hands back
    yield* Effect.addFinalizer(() => Effect.ignore(registry.markStopped(leaseOwner)))

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
      const profile = yield* Effect.either(loadBotProfile(stores.log, vault, botId, stores.snapshots))
      if (profile._tag === "Right") {
        learnBotKind(botId, profile.right.kind)
        if (profile.right.mode === "sandbox" && !sandbox) continue
        ensureInSandbox(profile.right)
      }
      known.add(botId)
      bots.push(botId)
      yield* supervisor.startBot(botId, { pinned: pinnedFor(profile) })
    }
    readiness.setPhase("running")
    yield* Effect.logInfo("botfleet node ready").pipe(
      Effect.annotateLogs({ ingress: ingressUrl, sandbox: sandbox?.apiRoot ?? null, bots: bots.length })
    )
    const startBot = (botId: string) =>
      Effect.gen(function* () {
        known.add(botId)
        const profile = yield* Effect.either(loadBotProfile(stores.log, vault, botId, stores.snapshots))
        yield* supervisor.startBot(botId, { pinned: pinnedFor(profile) })
      })
    api.attach({ supervisor, startBot })
    yield* api.advertise(ingressUrl)
    if (!embedded && Option.isSome(config.redisUrl)) {
      yield* serveControl({
        redisUrl: Redacted.value(config.redisUrl.value),
        prefix: config.redisPrefix,
        nodeId: leaseOwner,
        supervisor,
        startBot,
        forgetBot: (botId) => void known.delete(botId),
        onNodeRequest: answerNodeRequest(leaseOwner, settings)
      })
    }
    yield* runBackupSchedule({ settings, stores, nodeId: leaseOwner })
    return { config, ingressUrl, sandbox, bots, demoBots, aiBaseUrl, supervisor, stores, startBot, actorThreads: inner.threads, settings }
  })
