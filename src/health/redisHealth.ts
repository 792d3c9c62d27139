import { Redis } from "ioredis"
import type { RedisOptions } from "ioredis"
import type { ClientKey } from "./dependencyHealth.js"
import { currentThread, processHealth } from "./processHealth.js"

/*
 * Every ioredis client botfleet opens goes through here. Without an 'error' listener ioredis
 * prints each failed reconnect as a raw "[ioredis] Unhandled error event" line (thousands in one
 * outage); with this one each client reports into the process's dependency record, which logs one
 * structured line per client group when it goes down and one when it is back. ioredis itself keeps
 * reconnecting (its default retry strategy, capped at 2 s) and re-sends what was pending; callers
 * see a failed command as their own `*Unavailable` error and back off.
 */

/** host:port (or the socket path) of a client: what the log names, never a password. */
export const redisAddress = (client: Redis): string => {
  const o = client.options
  return o.path ? o.path : `${o.host ?? "127.0.0.1"}:${o.port ?? 6379}`
}

let members = 0

/**
 * Reports the client's connection state under `name` (one group per name, address and thread:
 * duplicates of a client share their group). Returns the client.
 */
export const watchRedis = <R extends Redis>(client: R, name: string): R => {
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
 * A new client for `url`, watched under `name`. A command sent while Redis is unreachable fails
 * after two reconnect attempts (well under a second) unless `options` say otherwise: callers turn
 * that into their `*Unavailable` error and back off, instead of each command waiting through
 * ioredis' default of twenty attempts (over a minute in a measured outage).
 */
export const openRedis = (url: string, name: string, options: RedisOptions = {}): Redis =>
  watchRedis(new Redis(url, { maxRetriesPerRequest: 2, ...options }), name)

/** A duplicate of `base` (same server and options, plus `override`), watched under `name`. */
export const duplicateRedis = (base: Redis, name: string, override: Partial<RedisOptions> = {}): Redis => watchRedis(base.duplicate(override), name)
