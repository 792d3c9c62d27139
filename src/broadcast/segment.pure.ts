/**
 * A broadcast's segment: which of a bot's users get it, as a filter over the `bot_users`
 * projection. Written as comma-separated terms, all of which must hold:
 *
 *   all                 every user the bot knows
 *   language=de         users whose Telegram language starts with `de` (several: language=de|fr)
 *   seen<7d             seen within the last 7 days (units: h, d)
 *   seen>30d            not seen for 30 days or more
 *   messages>=3         users who wrote at least 3 messages (also >, <, <=, =)
 *
 * Pure: parsed into SQL conditions with parameters, never text pasted into SQL.
 */

export interface SegmentSql {
  /** Conditions on `bot_users` (alias none), joined with AND; `$n` numbered from the given start. */
  readonly where: string
  readonly params: ReadonlyArray<unknown>
}

export class SegmentInvalid extends Error {
  override readonly name = "SegmentInvalid"
}

const DURATION = /^(\d{1,5})(h|d)$/

const hoursOf = (s: string): number => {
  const m = DURATION.exec(s)
  if (!m) throw new SegmentInvalid(`"${s}" is not a duration: use hours or days, e.g. 12h or 7d`)
  return Number(m[1]) * (m[2] === "d" ? 24 : 1)
}

/** Parses a segment into SQL conditions (parameters from `$first`); throws SegmentInvalid naming the term at fault. */
export const segmentSql = (segment: string, first: number): SegmentSql => {
  const terms = segment.split(",").map((t) => t.trim()).filter((t) => t.length > 0)
  if (terms.length === 0) throw new SegmentInvalid('the segment is empty: use "all" for every user')
  const where: string[] = []
  const params: unknown[] = []
  const param = (v: unknown) => {
    params.push(v)
    return `$${first + params.length - 1}`
  }
  for (const term of terms) {
    let m: RegExpExecArray | null
    if (term === "all") continue
    if ((m = /^language=([a-zA-Z|-]{2,64})$/.exec(term))) {
      const langs = m[1]!.split("|").filter((l) => l.length > 0).map((l) => l.toLowerCase())
      where.push(`(${langs.map((l) => `lower(language_code) LIKE ${param(`${l}%`)}`).join(" OR ")})`)
    } else if ((m = /^seen([<>])(.+)$/.exec(term))) {
      const cutoff = `now() - make_interval(hours => ${param(hoursOf(m[2]!))})`
      where.push(m[1] === "<" ? `last_seen_at > ${cutoff}` : `last_seen_at <= ${cutoff}`)
    } else if ((m = /^messages(>=|<=|>|<|=)(\d{1,9})$/.exec(term))) {
      where.push(`messages_in ${m[1]} ${param(Number(m[2]))}`)
    } else {
      throw new SegmentInvalid(`"${term}" is not a segment term: use all, language=de, seen<7d, seen>30d or messages>=3`)
    }
  }
  return { where: where.length === 0 ? "TRUE" : where.join(" AND "), params }
}
