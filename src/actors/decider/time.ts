/**
 * Time arithmetic on recorded ISO-8601 instants, without the clock: pure code may not touch
 * `Date` (lint), yet the dedupe window needs "24 h before this recorded time".
 */

const ISO = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
const daysFromCivil = (y: number, m: number, d: number): number => {
  const yy = m <= 2 ? y - 1 : y
  const era = Math.floor(yy / 400)
  const yoe = yy - era * 400
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
}

/** Milliseconds since the epoch of an ISO-8601 instant with a zone; NaN when it is not one. */
export const isoToMs = (iso: string): number => {
  const m = ISO.exec(iso)
  if (!m) return Number.NaN
  const [, y, mo, d, h, mi, s, frac, zone] = m
  const ms = frac ? Number(frac.slice(0, 3).padEnd(3, "0")) : 0
  let offsetMin = 0
  if (zone && zone !== "Z") {
    const sign = zone.startsWith("-") ? -1 : 1
    offsetMin = sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)))
  }
  const days = daysFromCivil(Number(y), Number(mo), Number(d))
  return ((days * 24 + Number(h)) * 60 + Number(mi) - offsetMin) * 60_000 + Number(s) * 1000 + ms
}
