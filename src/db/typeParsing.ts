/**
 * How both SqlClient adapters turn column text into JS values, so code behaves the same on a
 * Postgres server and on PGlite. Nothing lossy or zone-dependent is parsed: 64-bit integers,
 * numerics, timestamps, dates, intervals and transaction ids stay the text Postgres sent
 * (timestamps in ISO style, the session runs in UTC); callers convert explicitly. Only values that
 * map exactly are parsed: int2/int4 and floats to numbers, bool to booleans, json/jsonb to values.
 * Arrays keep each driver's default element parsing: avoid selecting arrays of the types above.
 */

/** Type OIDs kept as text (the pg-types defaults would turn them into Date, number or BigInt). */
export const TEXT_TYPE_OIDS: ReadonlyArray<number> = [
  20, // int8
  1700, // numeric
  1082, // date
  1083, // time
  1114, // timestamp
  1184, // timestamptz
  1186, // interval
  1266, // timetz
  5069 // xid8
]

const identity = (value: string): string => value

/** PGlite `parsers` option: every type in TEXT_TYPE_OIDS returned as the text sent. */
export const pgliteParsers = (): Record<number, (value: string) => unknown> =>
  Object.fromEntries(TEXT_TYPE_OIDS.map((oid) => [oid, identity]))
