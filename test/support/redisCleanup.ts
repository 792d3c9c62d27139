import type { Redis } from "ioredis"

/** Deletes every key under `prefix:` (a test suite's or a benchmark's own keys), in SCAN pages. */
export const deleteKeysUnder = async (redis: Redis, prefix: string): Promise<void> => {
  let cursor = "0"
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000)
    cursor = next
    if (keys.length > 0) await redis.unlink(...keys)
  } while (cursor !== "0")
}
