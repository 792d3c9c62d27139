/**
 * A bot's partition: FNV-1a of its id, modulo the partition count. Stable across processes,
 * machines and Node versions, so every node agrees on where a bot lives.
 */
export const partitionOf = (botId: string, partitions: number): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < botId.length; i++) {
    h ^= botId.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return (h >>> 0) % partitions
}

/** `p07`: the hash tag of a partition, so all its keys land in one Redis Cluster slot. */
export const partitionTag = (partition: number): string => `p${String(partition).padStart(2, "0")}`

/** Key names of the Redis layout (DESIGN.md). `prefix` isolates deployments and test suites. */
export const redisKeys = (prefix: string, partition: number) => {
  const base = `${prefix}:{${partitionTag(partition)}}`
  return {
    stream: (botId: string) => `${base}:bot:${botId}`,
    log: `${base}:log`,
    inbox: (botId: string) => `${base}:inbox:${botId}`,
    lease: (botId: string) => `${base}:lease:${botId}`,
    snapshot: (botId: string) => `${base}:snap:${botId}`,
    deadLetter: `${base}:dlq`
  }
}

/** Bot ids are used in keys, URLs and file names: keep them to a safe alphabet. */
export const BOT_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/

/**
 * The Redis Cluster hash slot of a key: CRC16 (XMODEM) of its hash tag (the part between the
 * first `{` and the next `}`, when not empty) or of the whole key, mod 16384, as Redis computes it.
 */
export const hashSlot = (key: string): number => {
  const open = key.indexOf("{")
  const close = open >= 0 ? key.indexOf("}", open + 1) : -1
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key
  const bytes = new TextEncoder().encode(hashed)
  let crc = 0
  for (const byte of bytes) {
    crc ^= byte << 8
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc % 16384
}

/**
 * The slot of a partition's keys (its `{pNN}` tag): every key of the partition lives in this one
 * slot whatever the prefix, so the node serving a partition is the node serving this slot.
 */
export const partitionSlot = (partition: number): number => hashSlot(`{${partitionTag(partition)}}`)
