import { Cluster, Redis } from "ioredis"
import type { ClusterOptions, RedisOptions } from "ioredis"
import type { ClientKey } from "./dependencyHealth.js"
import { currentThread, processHealth } from "./processHealth.js"
import { describeRedisUrl, isClusterUrl, parseClusterUrl } from "./redisUrl.pure.js"

/*
 * Every ioredis client botfleet opens goes through here. Without an 'error' listener ioredis
 * prints each failed reconnect as a raw "[ioredis] Unhandled error event" line (thousands in one
 * outage); with this one each client reports into the process's dependency record, which logs one
 * structured line per client group when it goes down and one when it is back. ioredis itself keeps
 * reconnecting (its default retry strategy, capped at 2 s) and re-sends what was pending; callers
 * see a failed command as their own `*Unavailable` error and back off.
 *
 * A `redis+cluster://` URL (REDIS_CLUSTER_NODES) opens an ioredis `Cluster` instead of a plain
 * client: the same commands, routed by key to the master serving the key's hash slot. Every key
 * botfleet writes carries its partition's hash tag (`{pNN}`), and every Lua script and multi-key
 * command names keys of one partition, so each lands on one node (docs/redis.md, "Redis Cluster").
 */

/** A plain client or a cluster client: what every Redis user in botfleet takes. */
export type RedisClient = Redis | Cluster

export const isCluster = (client: RedisClient): client is Cluster => client instanceof Cluster

/** What the logs call a client: host:port or the cluster's seed nodes, never a password. */
const labels = new WeakMap<RedisClient, string>()

/** host:port (or the socket path) of a client, or `cluster <seeds>`: what the log names, never a password. */
export const redisAddress = (client: RedisClient): string => {
  const label = labels.get(client)
  if (label !== undefined) return label
  if (isCluster(client)) return "cluster"
  const o = client.options
  return o.path ? o.path : `${o.host ?? "127.0.0.1"}:${o.port ?? 6379}`
}

let members = 0

/**
 * Reports the client's connection state under `name` (one group per name, address and thread:
 * duplicates of a client share their group). Returns the client.
 */
export const watchRedis = <R extends RedisClient>(client: R, name: string): R => {
  const key: ClientKey = { dependency: "redis", client: name, address: redisAddress(client), thread: currentThread() }
  const member = `redis-${++members}`
  client.on("error", (e: unknown) => processHealth.down(key, member, e))
  // a connection lost without an error (the server closed it): ioredis schedules a reconnect
  client.on("reconnecting", () => processHealth.down(key, member, new Error("connection lost; reconnecting")))
  client.on("ready", () => processHealth.up(key, member))
  client.on("end", () => processHealth.gone(key, member))
  return client
}

/**
 * ioredis' plain-client options as cluster options: connection-level ones go to every node's
 * connection (`redisOptions`), the queueing ones to the cluster itself.
 *
 * Failover: a command to a master that died fails on its node with "Connection is closed"; the
 * cluster client retries it every `retryDelayOnFailover` ms, refreshing the slot table, up to
 * `maxRedirections` times (16 × 200 ms ≈ 3 s), so a failover that completes within that (the
 * cluster's node timeout plus an election) is invisible to callers, and a longer one surfaces as
 * each caller's `*Unavailable` error, after which it backs off and tries again.
 */
const clusterOptionsOf = (url: string, options: RedisOptions): ClusterOptions => {
  const parsed = parseClusterUrl(url)
  if (!parsed) throw new Error(`not a valid Redis Cluster URL: ${describeRedisUrl(url)}`)
  const { lazyConnect, enableAutoPipelining, enableOfflineQueue, retryStrategy, ...node } = options
  const nodeOptions: RedisOptions = { ...node }
  if (parsed.username !== undefined) nodeOptions.username = parsed.username
  if (parsed.password !== undefined) nodeOptions.password = parsed.password
  if (parsed.tls) nodeOptions.tls = {}
  const cluster: ClusterOptions = {
    redisOptions: nodeOptions,
    // every read goes to the master: a replica lags, and the log's readers expect what was acknowledged
    scaleReads: "master",
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 100,
    maxRedirections: 16,
    slotsRefreshTimeout: 2000
  }
  if (lazyConnect !== undefined) cluster.lazyConnect = lazyConnect
  if (enableAutoPipelining !== undefined) cluster.enableAutoPipelining = enableAutoPipelining
  if (enableOfflineQueue !== undefined) cluster.enableOfflineQueue = enableOfflineQueue
  // a caller that gives up on a lost server (retryStrategy → null) gives up on a lost cluster too
  if (retryStrategy) cluster.clusterRetryStrategy = (times) => retryStrategy(times) ?? null
  return cluster
}

/**
 * A new client for `url`, watched under `name`. A command sent while Redis is unreachable fails
 * after two reconnect attempts (well under a second) unless `options` say otherwise: callers turn
 * that into their `*Unavailable` error and back off, instead of each command waiting through
 * ioredis' default of twenty attempts (over a minute in a measured outage).
 *
 * A `redis+cluster://` URL gives a `Cluster` over its seed nodes (see `clusterOptionsOf`).
 */
export const openRedis = (url: string, name: string, options: RedisOptions = {}): RedisClient => {
  const merged = { maxRetriesPerRequest: 2, ...options }
  if (isClusterUrl(url)) {
    const parsed = parseClusterUrl(url)
    const client = new Cluster(parsed?.nodes.map((n) => ({ host: n.host, port: n.port })) ?? [], clusterOptionsOf(url, merged))
    labels.set(client, describeRedisUrl(url))
    return watchRedis(client, name)
  }
  return watchRedis(new Redis(url, merged), name)
}

/** A duplicate of `base` (same server(s) and options, plus `override`), watched under `name`. */
export const duplicateRedis = (base: RedisClient, name: string, override: Partial<RedisOptions> = {}): RedisClient => {
  if (isCluster(base)) {
    const { lazyConnect, enableAutoPipelining, enableOfflineQueue, ...node } = override
    const options: ClusterOptions = { ...base.options, redisOptions: { ...base.options.redisOptions, ...node } }
    if (lazyConnect !== undefined) options.lazyConnect = lazyConnect
    if (enableAutoPipelining !== undefined) options.enableAutoPipelining = enableAutoPipelining
    if (enableOfflineQueue !== undefined) options.enableOfflineQueue = enableOfflineQueue
    const copy = base.duplicate(undefined, options)
    labels.set(copy, redisAddress(base))
    return watchRedis(copy, name)
  }
  return watchRedis(base.duplicate(override), name)
}

/**
 * PUBLISH, answering how many subscribers got the message. In Redis Cluster a message reaches
 * every node's subscribers but PUBLISH counts only those of the node it was sent to, so there the
 * count is the sum of `PUBSUB NUMSUB` over every node (the control channel's senders wait for
 * that many answers).
 */
export const publishCounted = async (client: RedisClient, channel: string, message: string): Promise<number> => {
  const local = await client.publish(channel, message)
  if (!isCluster(client)) return local
  const counts = await Promise.all(
    client.nodes("all").map(async (n) => {
      try {
        const reply = (await n.pubsub("NUMSUB", channel)) as Array<string | number>
        return Number(reply[1] ?? 0)
      } catch {
        return 0 // a node that is down has no subscriber that could answer
      }
    })
  )
  return counts.reduce((a, b) => a + b, 0)
}

/**
 * Every key matching `pattern`, page by page (SCAN). A cluster has no keyspace-wide SCAN: each
 * master is scanned on its own.
 */
export const scanKeys = async (client: RedisClient, pattern: string, onPage: (keys: ReadonlyArray<string>) => Promise<void>): Promise<void> => {
  const nodes: ReadonlyArray<Redis> = isCluster(client) ? client.nodes("master") : [client]
  for (const node of nodes) {
    let cursor = "0"
    do {
      const [next, keys] = await node.scan(cursor, "MATCH", pattern, "COUNT", 1000)
      cursor = next
      if (keys.length > 0) await onPage(keys)
    } while (cursor !== "0")
  }
}

/**
 * Deletes keys one slot at a time: UNLINK of several keys is a multi-key command, refused with
 * CROSSSLOT in a cluster when they hash to different slots.
 */
export const unlinkKeys = async (client: RedisClient, keys: ReadonlyArray<string>): Promise<void> => {
  if (keys.length === 0) return
  if (!isCluster(client)) {
    await client.unlink(...keys)
    return
  }
  await Promise.all(keys.map((k) => client.unlink(k)))
}

/**
 * A connection of its own to the node serving `slot`, for a blocking read there, and the client
 * through which that same node is told to unblock it. Plainly a duplicate of `base` and `base`
 * itself; in a cluster a plain client of the slot's current master (from the cluster's slot
 * table) and the cluster's own connection to that master. A cluster reader's connection does not
 * reconnect by itself: after a failover its node no longer serves the slot, so the reader opens a
 * new one through here, to the new master.
 */
export const openSlotConnection = async (
  base: RedisClient,
  slot: number,
  name: string,
  options: Partial<RedisOptions> = {}
): Promise<{ readonly conn: Redis; readonly admin: RedisClient; readonly reconnects: boolean }> => {
  if (!isCluster(base)) return { conn: duplicateRedis(base, name, options) as Redis, admin: base, reconnects: true }
  // the slot table is filled once the cluster is ready; a PING waits for that (or fails)
  if (base.slots.length === 0 || base.slots[slot] === undefined) await base.ping()
  const nodeKey = base.slots[slot]?.[0]
  if (nodeKey === undefined) throw new Error(`no node serves hash slot ${slot}`)
  const admin = base.nodes("master").find((n) => `${n.options.host}:${n.options.port}` === nodeKey)
  if (admin === undefined) throw new Error(`hash slot ${slot}: its master ${nodeKey} is not among the cluster's connections`)
  const cut = nodeKey.lastIndexOf(":")
  const conn = new Redis({
    ...base.options.redisOptions,
    ...options,
    host: nodeKey.slice(0, cut),
    port: Number(nodeKey.slice(cut + 1)),
    // no reconnect: a lost node may no longer serve the slot; the reader reopens through the slot table
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: true
  })
  labels.set(conn, nodeKey)
  return { conn: watchRedis(conn, name), admin, reconnects: false }
}

/**
 * INFO `section`. In a cluster every master holds part of the data, so the numeric fields are
 * summed over the masters (used_memory of the whole cluster, maxmemory its capacity) and given
 * back as INFO text; other fields are dropped.
 */
export const infoAcrossMasters = async (client: RedisClient, section: string): Promise<string> => {
  if (!isCluster(client)) return client.info(section)
  if (client.nodes("master").length === 0) await client.ping()
  const texts = await Promise.all(client.nodes("master").map((n) => n.info(section)))
  const sums = new Map<string, number>()
  for (const text of texts) {
    for (const line of text.split(/\r?\n/)) {
      const i = line.indexOf(":")
      if (i <= 0 || line.startsWith("#")) continue
      const n = Number(line.slice(i + 1).trim())
      if (Number.isFinite(n)) sums.set(line.slice(0, i), (sums.get(line.slice(0, i)) ?? 0) + n)
    }
  }
  return [...sums].map(([k, v]) => `${k}:${v}`).join("\r\n")
}
