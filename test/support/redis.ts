import { randomBytes } from "node:crypto"
import { Redis } from "ioredis"
import { inject } from "vitest"

/** A fresh key prefix for one suite, with every key under it deleted afterwards. */
export const createTestPrefix = (label: string): { prefix: string; url: string; cleanup: () => Promise<void> } => {
  const url = inject("redisUrl")
  const prefix = `bft-${label}-${randomBytes(4).toString("hex")}`
  return {
    prefix,
    url,
    cleanup: async () => {
      const redis = new Redis(url)
      try {
        let cursor = "0"
        do {
          const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000)
          cursor = next
          if (keys.length > 0) await redis.del(...keys)
        } while (cursor !== "0")
      } finally {
        redis.disconnect()
      }
    }
  }
}
