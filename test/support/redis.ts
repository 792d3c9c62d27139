import { randomBytes } from "node:crypto"
import { Redis } from "ioredis"
import { inject } from "vitest"
import { deleteKeysUnder } from "./redisCleanup.js"

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
        await deleteKeysUnder(redis, prefix)
      } finally {
        redis.disconnect()
      }
    }
  }
}
