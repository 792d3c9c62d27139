import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client"
import type { RecordedEvent } from "../events/schema/envelope.js"
import { kindOf, learnBotKind } from "./botKinds.js"
import { makeEventTally } from "./eventTally.pure.js"
import { setThreadStatsSink } from "./threadStats.js"

/*
 * The node's Prometheus metrics (prom-client), and the few named functions the rest of the code
 * records through, so every instrumentation point is one line. One registry per process: a node
 * is one process. Labels are bounded: bot kinds (a configured short list), Bot API methods (the
 * first MAX_METHODS names), partitions, fixed outcome names; never a user id, a chat id or a
 * token. The bot id becomes a label only with METRICS_BOT_LABELS (configureMetrics), for small
 * fleets. Every metric, its labels and meaning: docs/observability.md.
 */

export interface MetricsOptions {
  /** Label per-bot series (updates, reply latency, restarts, give-ups) with the bot id too. */
  readonly botLabels: boolean
}

/** Distinct Bot API method label values; calls of any further method count as `other`. */
export const MAX_METHODS = 100

const SECONDS_FAST = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
const SECONDS_SLOW = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

/** Runtime states of a bot's supervision (supervisor.ts RuntimeState): each one a series of `botfleet_actors`. */
export const ACTOR_STATES = ["waiting", "starting", "running", "restarting", "passivated", "failed", "stopped"] as const

const build = (o: MetricsOptions) => {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  // gauges named like counters (promtool refuses them); their per-type siblings stay (nodejs_active_handles...)
  for (const name of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) registry.removeSingleMetric(name)
  const registers = [registry]
  const perBot = (names: ReadonlyArray<string>) => (o.botLabels ? [...names, "bot"] : [...names])
  const metrics = {
    registry,
    nodeInfo: new Gauge({ name: "botfleet_node_info", help: "Always 1; labels name the node and its mode", labelNames: ["node_id", "mode"], registers }),
    updatesAccepted: new Counter({
      name: "botfleet_updates_accepted_total",
      help: "Updates put in a bot's inbox by this node: by the webhook ingress (answered 200) or a long poller",
      labelNames: perBot(["kind", "source"]),
      registers
    }),
    updatesHandled: new Counter({ name: "botfleet_updates_handled_total", help: "Updates a bot handled (UpdateReceived), among the events this node projected", labelNames: perBot(["kind"]), registers }),
    updatesFailed: new Counter({ name: "botfleet_updates_failed_total", help: "Updates a bot failed on (UpdateFailed), among the events this node projected", labelNames: perBot(["kind"]), registers }),
    updatesDuplicate: new Counter({
      name: "botfleet_updates_duplicate_total",
      help: "Updates a bot dropped as already handled (UpdateDuplicateDropped), among the events this node projected",
      labelNames: perBot(["kind"]),
      registers
    }),
    replySeconds: new Histogram({
      name: "botfleet_update_reply_seconds",
      help: "From an update entering the inbox (webhook accepted, or polled) to the bot's first reply to it, as recorded in the events this node projected",
      labelNames: perBot(["kind"]),
      buckets: SECONDS_SLOW,
      registers
    }),
    botApiCalls: new Counter({ name: "botfleet_bot_api_calls_total", help: "Bot API calls sent by this node's actors, by method and result (ok, unknown, not_sent, or the refusal's error code)", labelNames: ["method", "result"], registers }),
    rateLimited: new Counter({ name: "botfleet_bot_api_rate_limited_total", help: "429 Too Many Requests answers from the Bot API (each one, whether waited out and retried or not)", registers }),
    waitSeconds: new Counter({ name: "botfleet_bot_api_wait_seconds_total", help: "Seconds Bot API calls waited before being sent: limit (client-side limits), retry_after (a 429), backoff (a 5xx/network retry)", labelNames: ["reason"], registers }),
    inboxDepth: new Gauge({ name: "botfleet_inbox_depth", help: "Updates waiting in the inboxes of the bots running on this node", registers }),
    inboxDepthMax: new Gauge({ name: "botfleet_inbox_depth_max", help: "Updates waiting in the deepest inbox of a bot running on this node", registers }),
    actors: new Gauge({ name: "botfleet_actors", help: "Bots this node supervises, by state (running: resident; starting: activating; passivated: unloaded until their next update)", labelNames: ["state"], registers }),
    activationSeconds: new Histogram({ name: "botfleet_actor_activation_seconds", help: "From starting a bot's actor to it running (token, webhook, snapshot + tail replayed, BotStarted recorded)", buckets: SECONDS_SLOW, registers }),
    leaseTakeovers: new Counter({ name: "botfleet_lease_takeovers_total", help: "Bots this node took over: it waited while another node held the lease, then got it", registers }),
    restarts: new Counter({ name: "botfleet_actor_restarts_total", help: "Actor restarts by this node's supervisor: crash (counts against the restart budget) or outage (a store was unreachable)", labelNames: perBot(["cause"]), registers }),
    giveUps: new Counter({ name: "botfleet_bot_giveups_total", help: "Bots this node's supervisor gave up on after their restart budget (BotGaveUp)", labelNames: perBot([]), registers }),
    appendSeconds: new Histogram({ name: "botfleet_event_append_seconds", help: "Latency of appends to the event log by this node (actors on every thread, and the supervisor)", buckets: SECONDS_FAST, registers }),
    appends: new Counter({ name: "botfleet_event_appends_total", help: "Appends to the event log by this node, by result (conflict: another writer appended first)", labelNames: ["result"], registers }),
    projected: new Counter({ name: "botfleet_projected_events_total", help: "Events this node's projectors wrote into the projections, by log partition", labelNames: ["partition"], registers }),
    projectionWaiting: new Gauge({ name: "botfleet_projection_waiting_events", help: "Log entries after the projections' checkpoint, by partition (counted up to 1000)", labelNames: ["partition"], registers }),
    projectionLag: new Gauge({ name: "botfleet_projection_lag_seconds", help: "Age of the oldest event not yet projected, by partition (0 when caught up)", labelNames: ["partition"], registers }),
    projectionStalled: new Gauge({ name: "botfleet_projection_stalled", help: "1 when events wait and nothing was projected for 30 s, by partition", labelNames: ["partition"], registers }),
    deadLetters: new Gauge({ name: "botfleet_dead_letters", help: "Entries in the partition log's dead-letter stream (botfleet dlq list), by partition", labelNames: ["partition"], registers }),
    deadLettered: new Counter({ name: "botfleet_dead_lettered_total", help: "Dead letters written by this node: inbox (a bot's handler failed on an update) or log (a consumer refused a log entry)", labelNames: ["source"], registers }),
    storeErrors: new Counter({ name: "botfleet_store_errors_total", help: "Calls of this node to Redis, Postgres or PGlite that failed to reach the store, by store and operation", labelNames: ["store", "operation"], registers }),
    // registered on first reading: an embedded node has no Redis to report on
    redisUsed: new Gauge({ name: "botfleet_redis_used_memory_bytes", help: "Redis INFO used_memory (production mode)", registers: [] }),
    redisMax: new Gauge({ name: "botfleet_redis_maxmemory_bytes", help: "Redis INFO maxmemory, 0 when unlimited (production mode)", registers: [] }),
    aiReplies: new Counter({ name: "botfleet_ai_replies_total", help: "AI replies among the events this node projected: ok (a model's answer) or the reason the bot fell back (unavailable, timeout, rate_limited, refused, over_budget, unknown, not_configured)", labelNames: perBot(["kind", "result"]), registers }),
    aiTokens: new Counter({ name: "botfleet_ai_tokens_total", help: "Model tokens (prompt + completion) of the AI replies this node projected", labelNames: perBot(["kind"]), registers }),
    httpRequests: new Counter({ name: "botfleet_http_requests_total", help: "HTTP requests answered by the node's server, by route template, method and status code", labelNames: ["route", "method", "code"], registers }),
    httpSeconds: new Histogram({ name: "botfleet_http_request_seconds", help: "HTTP request durations by route template", labelNames: ["route"], buckets: SECONDS_FAST, registers }),
    scrapeErrors: new Counter({ name: "botfleet_metrics_source_errors_total", help: "Scrapes where a source of gauges (actors, projection lag, dead letters, redis) failed or timed out", labelNames: ["source"], registers }),
    samplesDropped: new Counter({ name: "botfleet_metrics_samples_dropped_total", help: "Append latency samples a worker thread could not keep between two heartbeats (more than 10,000)", registers })
  }
  for (const source of ["inbox", "log"]) metrics.deadLettered.inc({ source }, 0)
  for (const result of ["ok", "conflict", "stale_fence", "unavailable"]) metrics.appends.inc({ result }, 0)
  return metrics
}

type Metrics = ReturnType<typeof build>
// built on first use: a CLI command that imports the supervisor collects no process metrics
let built: Metrics | null = null
let options: MetricsOptions = { botLabels: false }
const m = (): Metrics => (built ??= build(options))
const tally = makeEventTally()
const methods = new Set<string>()

const bot = (botId: string, labels: Record<string, string> = {}): Record<string, string> => ({
  kind: kindOf(botId),
  ...labels,
  ...(options.botLabels ? { bot: botId } : {})
})
const botOnly = (botId: string, labels: Record<string, string> = {}) => ({ ...labels, ...(options.botLabels ? { bot: botId } : {}) })

const methodLabel = (method: string) => {
  if (methods.has(method)) return method
  if (methods.size >= MAX_METHODS) return "other"
  methods.add(method)
  return method
}

setThreadStatsSink({
  appendLatency: (s) => m().appendSeconds.observe(s),
  appends: (result, n) => m().appends.inc({ result }, n),
  call: (method, result, n) => m().botApiCalls.inc({ method: methodLabel(method), result }, n),
  rateLimited: (n) => m().rateLimited.inc(n),
  waited: (reason, s) => m().waitSeconds.inc({ reason }, s),
  deadLettered: (source, n) => m().deadLettered.inc({ source }, n),
  storeError: (store, operation, n) => m().storeErrors.inc({ store, operation }, n),
  dropped: (n) => m().samplesDropped.inc(n)
})

/**
 * Sets the options at node start, before anything is recorded. Changing `botLabels` builds the
 * metrics anew (their label names change), so values recorded before are dropped.
 */
export const configureMetrics = (o: MetricsOptions): void => {
  if (o.botLabels === options.botLabels) return
  options = o
  built = null
}

export const setNodeInfo = (nodeId: string, mode: string): void => {
  m().nodeInfo.reset()
  m().nodeInfo.set({ node_id: nodeId, mode }, 1)
}

/** The exposition text of every metric (Prometheus text format 0.0.4). */
export const renderMetrics = (): Promise<string> => m().registry.metrics()
export const metricsContentType = (): string => m().registry.contentType
/** Names of the registered metrics (alert rules are checked against them). */
export const metricNames = (): ReadonlyArray<string> => m().registry.getMetricsAsArray().map((x) => x.name)

/** An update entered a bot's inbox through this node. */
export const countUpdateAccepted = (botId: string, source: "webhook" | "polling"): void => m().updatesAccepted.inc(bot(botId, { source }))

/**
 * A projector of this node committed these events (the rows are written). `kinds`: the bots'
 * kinds as the `bots` projection knew them before the batch.
 */
export const countProjected = (partition: number, events: ReadonlyArray<RecordedEvent>, kinds: ReadonlyMap<string, string>): void => {
  for (const [botId, kind] of kinds) learnBotKind(botId, kind)
  if (events.length > 0) m().projected.inc({ partition: String(partition) }, events.length)
  // counted per batch and label set, then added: one counter update per kind, not per event
  const counts = new Map<string, { counter: Counter; labels: Record<string, string>; n: number }>()
  for (const o of tally(events)) {
    switch (o._tag) {
      case "Kind":
        learnBotKind(o.botId, o.kind)
        break
      case "Update": {
        const labels = bot(o.botId)
        const key = `${o.outcome}\u0000${labels.kind}\u0000${labels.bot ?? ""}`
        const c = counts.get(key)
        if (c) c.n++
        else counts.set(key, { counter: o.outcome === "handled" ? m().updatesHandled : o.outcome === "failed" ? m().updatesFailed : m().updatesDuplicate, labels, n: 1 })
        break
      }
      case "Reply":
        m().replySeconds.observe(bot(o.botId), o.seconds)
        break
      case "Ai":
        m().aiReplies.inc(bot(o.botId, { result: o.result }))
        if (o.tokens > 0) m().aiTokens.inc(bot(o.botId), o.tokens)
        break
    }
  }
  for (const c of counts.values()) c.counter.inc(c.labels, c.n)
}

export const observeActivation = (seconds: number): void => m().activationSeconds.observe(seconds)
export const countLeaseTakeover = (): void => m().leaseTakeovers.inc()
export const countRestart = (botId: string, cause: "crash" | "outage"): void => m().restarts.inc(botOnly(botId, { cause }))
export const countGiveUp = (botId: string): void => m().giveUps.inc(botOnly(botId))

/** An HTTP request was answered. `route`: the route's template (`/telegram/:botId`), never the URL. */
export const observeHttp = (route: string, method: string, code: number, seconds: number): void => {
  m().httpRequests.inc({ route, method, code: String(code) })
  m().httpSeconds.observe({ route }, seconds)
}

/** The supervisor's bots by state, and the inboxes of those running here. */
export const setActorGauges = (states: Readonly<Record<string, number>>, inboxDepth: number, inboxDepthMax: number): void => {
  for (const state of ACTOR_STATES) m().actors.set({ state }, states[state] ?? 0)
  m().inboxDepth.set(inboxDepth)
  m().inboxDepthMax.set(inboxDepthMax)
}

export interface PartitionGauges {
  readonly waiting: number
  readonly lagSeconds: number
  readonly stalled: boolean
}

export const setProjectionGauges = (partition: number, g: PartitionGauges): void => {
  const labels = { partition: String(partition) }
  m().projectionWaiting.set(labels, g.waiting)
  m().projectionLag.set(labels, g.lagSeconds)
  m().projectionStalled.set(labels, g.stalled ? 1 : 0)
}

export const setDeadLetterGauge = (partition: number, count: number): void => m().deadLetters.set({ partition: String(partition) }, count)

export const setRedisMemory = (used: number, max: number): void => {
  if (!m().registry.getSingleMetric("botfleet_redis_used_memory_bytes")) {
    m().registry.registerMetric(m().redisUsed)
    m().registry.registerMetric(m().redisMax)
  }
  m().redisUsed.set(used)
  m().redisMax.set(max)
}

/** A source of gauges failed or timed out during a scrape: its gauges keep their last values. */
export const countSourceError = (source: string): void => m().scrapeErrors.inc({ source })
