import type { RedisClient } from "../health/redisHealth.js"

/**
 * Connections for blocking reads (XREADGROUP BLOCK). A blocked command parks its connection until
 * data or timeout, so it must never share the connection appends use; and concurrent blocking
 * reads must not queue behind each other either. Each read borrows an idle connection or opens a
 * new one, and gives it back when done: the pool grows to the peak number of concurrent blocking
 * reads and no further.
 */
export interface BlockingPool {
  readonly use: <A>(f: (client: RedisClient) => Promise<A>) => Promise<A>
  readonly close: () => Promise<void>
}

export const makeBlockingPool = (open: () => RedisClient): BlockingPool => {
  const idle: RedisClient[] = []
  const all = new Set<RedisClient>()
  let closed = false
  return {
    use: async (f) => {
      if (closed) throw new Error("the event log is closed")
      const client = idle.pop() ?? open()
      all.add(client)
      try {
        return await f(client)
      } finally {
        if (closed) client.disconnect()
        else idle.push(client)
      }
    },
    close: async () => {
      closed = true
      idle.length = 0
      await Promise.all([...all].map((c) => c.quit().catch(() => c.disconnect())))
      all.clear()
    }
  }
}
