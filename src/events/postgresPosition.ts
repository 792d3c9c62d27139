/**
 * Positions in the Postgres partition log: `<tx>-<seq>`, the inserting transaction's id (xid8) and
 * the row's global insertion number. Entries are ordered by tx, then seq. Ordering by seq alone
 * would let a reader skip an entry: seq is taken at insert time, not at commit, so a later seq can
 * commit first (see docs/postgres-log.md). Same shape as a Redis stream id (`<ms>-<seq>`).
 */
export interface PgPosition {
  readonly tx: string
  readonly seq: string
}

export const ZERO_POSITION: PgPosition = { tx: "0", seq: "0" }

export const formatPosition = (p: PgPosition): string => `${p.tx}-${p.seq}`

const PATTERN = /^(\d{1,20})-(\d{1,20})$/

/** Parses `<tx>-<seq>`; a plain `<seq>` or anything else is refused (RangeError): positions are opaque, take them from the log. */
export const parsePosition = (position: string): PgPosition => {
  const m = PATTERN.exec(position)
  if (!m) throw new RangeError(`not a Postgres log position: ${JSON.stringify(position)} (expected <tx>-<seq>)`)
  return { tx: m[1]!, seq: m[2]! }
}

/** Orders two positions as the partition log does. */
export const comparePositions = (a: string, b: string): number => {
  const pa = parsePosition(a)
  const pb = parsePosition(b)
  const t = BigInt(pa.tx) - BigInt(pb.tx)
  if (t !== 0n) return t < 0n ? -1 : 1
  const s = BigInt(pa.seq) - BigInt(pb.seq)
  return s === 0n ? 0 : s < 0n ? -1 : 1
}
