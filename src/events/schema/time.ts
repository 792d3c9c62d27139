/*
 * Instants as pure code needs them (the decider's dedupe window, the projections' days and
 * lags), without the clock or Date, which lint forbids there. Events carry ISO-8601 text;
 * Postgres receives that text and casts it.
 */

const ISO = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:?\d{2})$/

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
const daysFromCivil = (y: number, m: number, d: number): number => {
  const yy = m <= 2 ? y - 1 : y
  const era = Math.floor(yy / 400)
  const yoe = yy - era * 400
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
}

const civilFromDays = (z0: number): [number, number, number] => {
  const z = z0 + 719468
  const era = Math.floor(z / 146097)
  const doe = z - era * 146097
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365)
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100))
  const mp = Math.floor((5 * doy + 2) / 153)
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1
  const m = mp + (mp < 10 ? 3 : -9)
  return [m <= 2 ? era * 400 + yoe + 1 : era * 400 + yoe, m, d]
}

/**
 * Milliseconds since the epoch of a strict ISO-8601 instant (with `Z` or an offset), or
 * undefined for anything else: such text is refused before it reaches a timestamptz cast.
 */
export const epochMs = (iso: string): number | undefined => {
  const m = ISO.exec(iso)
  if (!m) return undefined
  const [, ys, mos, ds, hs, mis, ss, frac, zone] = m
  const y = Number(ys), mo = Number(mos), d = Number(ds), h = Number(hs), mi = Number(mis), s = Number(ss ?? "0")
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59) return undefined
  const [, , dBack] = civilFromDays(daysFromCivil(y, mo, d))
  if (dBack !== d) return undefined // e.g. February 30th
  const ms = frac ? Math.floor(Number(`0.${frac}`) * 1000) : 0
  let offsetMin = 0
  if (zone && zone !== "Z") {
    const digits = zone.replace(":", "")
    offsetMin = (digits[0] === "-" ? -1 : 1) * (Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5)))
  }
  return ((daysFromCivil(y, mo, d) * 24 + h) * 60 + mi - offsetMin) * 60_000 + s * 1000 + ms
}

/** The UTC calendar day (`YYYY-MM-DD`) of epoch milliseconds. */
export const utcDay = (ms: number): string => {
  const [y, m, d] = civilFromDays(Math.floor(ms / 86_400_000))
  return `${String(y).padStart(4, "0")}-${String(m).padStart(2, "0")}-${String(d).padStart(2, "0")}`
}
