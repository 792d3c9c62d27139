import { randomUUID } from "node:crypto"
import type { Redis } from "ioredis"
import { partitionSlot, partitionTag } from "../events/partition.js"
import { openSlotConnection } from "../health/redisHealth.js"
import type { RedisClient } from "../health/redisHealth.js"
import type { InboxEntry } from "./inbox.js"

export type StreamEntry = [id: string, fields: string[]]
type Wake = (entries?: ReadonlyArray<InboxEntry>) => void

/** How long a blocking XREAD lasts before it is re-issued anyway (a lost unblock costs at most this). */
const BLOCK_MS = 2000

/*
 * A partition's reader connection is closed once the partition has had no waiter for this long,
 * not at once: an actor leaves its partition without waiters for the few milliseconds it handles
 * a batch, and a passivated bot's wait ends every few seconds and is re-issued, so closing at once
 * would open a connection per wait. The count is bounded by the partition count anyway (16 by
 * default), so the delay only decides how soon a process gives back connections it stopped using.
 */
const IDLE_CLOSE_MS = 30_000

/**
 * XREAD's reply as [key, entries] pairs: RESP2 nests one pair per stream, while a RESP3 map
 * reaches us flattened as [key1, entries1, key2, entries2, ...].
 */
const streamsOf = (res: unknown): Array<[string, StreamEntry[]]> => {
  if (!Array.isArray(res) || res.length === 0) return []
  if (typeof res[0] !== "string") return res as Array<[string, StreamEntry[]]>
  const pairs: Array<[string, StreamEntry[]]> = []
  for (let i = 0; i + 1 < res.length; i += 2) pairs.push([res[i] as string, res[i + 1] as StreamEntry[]])
  return pairs
}

interface Waiter {
  after: string
  count: number
  readonly wakes: Set<Wake>
}

/** One partition's blocking reader: its waiters (by inbox key) and its own connection. */
interface Reader {
  readonly waiting: Map<string, Waiter>
  /** Names the connection, so its id can be found again after a reconnect. */
  readonly name: string
  conn: Redis | null
  connId: number | null
  /** Where CLIENT LIST / CLIENT UNBLOCK reach the reader's node: the main client, or in a cluster its connection to that node. */
  admin: RedisClient | null
  /** The connection reconnects by itself (plain Redis); a cluster reader's is reopened instead, to the slot's current master. */
  reconnects: boolean
  looping: boolean
  inFlight: boolean
  unblockQueued: boolean
  idle: ReturnType<typeof setTimeout> | null
}

export interface InboxReaders {
  /**
   * Calls `wake` once: with the entries after `after` (at most `count`) when the reader got them
   * for this waiter, with nothing when the inbox may have changed (the caller reads) or after
   * `maxWaitMs`. Returns the cancel, which never calls `wake`.
   */
  readonly wait: (partition: number, key: string, after: string, count: number, maxWaitMs: number, wake: Wake) => () => void
  /** Wakes every waiter with nothing and closes every reader connection. */
  readonly close: () => void
}

/**
 * The blocking readers behind `waitFor`: one per partition that has waiters, each a loop of
 * `XREAD BLOCK` over the inboxes of that partition's waiting bots, on a connection of its own
 * (duplicated from `redis`, which sends the unblocks and is not closed here; in a cluster, a plain
 * connection to the master serving the partition's slot, unblocked through the cluster's own
 * connection to that master). All keys of one
 * XREAD share the partition's hash tag, so each read touches one Redis Cluster slot; and idle bots
 * still cost no connection each: at most one per partition.
 */
export const makeInboxReaders = (redis: RedisClient, decode: (entry: StreamEntry) => InboxEntry): InboxReaders => {
  const readers = new Map<number, Reader>()
  const run = randomUUID()
  let closed = false

  const readerOf = (partition: number): Reader => {
    let r = readers.get(partition)
    if (!r) {
      r = {
        waiting: new Map(),
        name: `botfleet-inbox-reader-${run}-${partitionTag(partition)}`,
        conn: null,
        connId: null,
        admin: null,
        reconnects: true,
        looping: false,
        inFlight: false,
        unblockQueued: false,
        idle: null
      }
      readers.set(partition, r)
    }
    if (r.idle) {
      clearTimeout(r.idle)
      r.idle = null
    }
    return r
  }

  const wakeAll = (r: Reader, key: string, entries?: ReadonlyArray<InboxEntry>) => {
    const w = r.waiting.get(key)
    if (!w) return
    r.waiting.delete(key)
    // entries go to one waiter only (one actor per bot); any other just reads again
    let given = false
    for (const wake of w.wakes) {
      wake(given ? undefined : entries)
      given = true
    }
  }

  const refreshId = async (r: Reader, conn: Redis) => {
    try {
      const list = String(await (r.admin ?? redis).call("CLIENT", "LIST", "TYPE", "normal"))
      const line = list.split("\n").find((l) => l.includes(` name=${r.name} `))
      const id = line ? /^id=(\d+)/.exec(line)?.[1] : undefined
      if (id !== undefined && r.conn === conn && conn.status === "ready") r.connId = Number(id)
    } catch {
      // the other connection is down too: no unblock until the next 'ready'
    }
  }

  const connect = async (partition: number, r: Reader): Promise<Redis> => {
    // in a cluster: a plain connection to the master serving the partition's slot (the XREAD's
    // keys all live there), and the unblocks go to that node too
    const { conn, admin, reconnects } = await openSlotConnection(redis, partitionSlot(partition), "inbox-readers", { connectionName: r.name })
    r.conn = conn
    r.admin = admin
    r.reconnects = reconnects
    // After a reconnect the connection has a new id, and ioredis re-sends the pending XREAD BLOCK
    // before the 'ready' listeners run, so CLIENT ID on the reader itself would queue behind the
    // block. Look the id up by the reader's name (set again in every handshake) over the other
    // connection; until then no unblock is sent, and the read ends by its BLOCK timeout as before.
    conn.on("close", () => {
      if (r.conn === conn) r.connId = null
    })
    conn.on("ready", () => void refreshId(r, conn))
    r.connId = Number(await conn.client("ID"))
    return conn
  }

  const closeWhenIdle = (partition: number, r: Reader) => {
    if (closed || r.looping || r.waiting.size > 0 || r.idle) return
    r.idle = setTimeout(() => {
      r.idle = null
      if (r.looping || r.waiting.size > 0 || readers.get(partition) !== r) return
      readers.delete(partition)
      r.conn?.disconnect()
    }, IDLE_CLOSE_MS)
    r.idle.unref()
  }

  const loop = async (partition: number, r: Reader) => {
    r.looping = true
    try {
      const conn = r.conn ?? (await connect(partition, r))
      while (r.waiting.size > 0 && !closed) {
        const keys = [...r.waiting.keys()]
        const ids = keys.map((k) => r.waiting.get(k)!.after)
        const count = Math.max(...keys.map((k) => r.waiting.get(k)!.count))
        r.inFlight = true
        r.unblockQueued = false
        let res: unknown
        try {
          res = await conn.call("XREAD", ["COUNT", count, "BLOCK", BLOCK_MS, "STREAMS", ...keys, ...ids])
        } finally {
          r.inFlight = false
        }
        for (const [key, entries] of streamsOf(res)) {
          // hand the entries over only if the waiter still waits after the id they were read after
          const w = r.waiting.get(key)
          const asked = ids[keys.indexOf(key)]
          wakeAll(r, key, w && w.after === asked ? entries.slice(0, w.count).map(decode) : undefined)
        }
      }
    } catch {
      // the connection failed or closed: wake everyone, they read again and come back if needed
      for (const key of [...r.waiting.keys()]) wakeAll(r, key)
      if (!r.reconnects) {
        // a cluster reader's node may no longer serve the slot (failover, MOVED): the next round
        // opens a connection to whichever master serves it then
        r.conn?.disconnect()
        r.conn = null
        r.connId = null
      }
    } finally {
      r.looping = false
      closeWhenIdle(partition, r)
    }
  }

  const nudge = (partition: number, r: Reader) => {
    if (!r.looping) {
      void loop(partition, r)
    } else if (r.inFlight && !r.unblockQueued && r.connId !== null) {
      // coalesce: one unblock per XREAD round, sent after this tick's registrations; only this
      // partition's read is re-issued, the other partitions' readers keep blocking
      r.unblockQueued = true
      setImmediate(() => {
        if (r.inFlight && r.connId !== null && !closed) (r.admin ?? redis).client("UNBLOCK", r.connId).catch(() => undefined)
      })
    }
  }

  return {
    wait: (partition, key, after, count, maxWaitMs, wake) => {
      if (closed) {
        wake()
        return () => undefined
      }
      const r = readerOf(partition)
      const w: Waiter = r.waiting.get(key) ?? { after, count, wakes: new Set() }
      w.after = after
      w.count = count
      r.waiting.set(key, w)
      const forget = () => {
        clearTimeout(timer)
        w.wakes.delete(done)
        if (w.wakes.size === 0 && r.waiting.get(key) === w) r.waiting.delete(key)
        closeWhenIdle(partition, r)
      }
      const done: Wake = (entries) => {
        forget()
        wake(entries)
      }
      const timer = setTimeout(() => done(), maxWaitMs)
      w.wakes.add(done)
      nudge(partition, r)
      return forget
    },
    close: () => {
      closed = true
      for (const r of readers.values()) {
        if (r.idle) clearTimeout(r.idle)
        for (const key of [...r.waiting.keys()]) wakeAll(r, key)
        r.conn?.disconnect()
      }
      readers.clear()
    }
  }
}
