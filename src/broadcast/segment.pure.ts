/**
 * A broadcast's segment: which of a bot's users get it, as a filter over the `bot_users`
 * projection (and, for tags and legacy data, the `bot_sessions` and `imported_records` rows of the
 * same user). Written as comma-separated terms, all of which must hold:
 *
 *   all                 every user the bot knows
 *   language=de         users whose Telegram language starts with `de` (several: language=de|fr)
 *   seen<7d             seen within the last 7 days (units: h, d)
 *   seen>30d            not seen for 30 days or more
 *   messages>=3         users who wrote at least 3 messages (also >, <, <=, =)
 *   tag=vip             users tagged vip (several: tag=vip|gold, any of them); tag!=vip: not tagged
 *   legacy.plan=pro     users whose imported legacy record (the generic layout's `users` record,
 *                       or a telegraf session of theirs) has `plan` = "pro"; a dotted path reaches
 *                       into objects (legacy.profile.city=Oslo); compared as text (true, 3)
 *
 * Tags live in the session `tags:<userId>` of the bot's state (userTags.ts), so they are events
 * on the bot's stream like everything else, and reach `bot_sessions` through the users projection.
 *
 * Pure: parsed into SQL conditions with parameters, never text pasted into SQL.
 */

export interface SegmentSql {
  /** Conditions on `bot_users` (alias none), joined with AND; `$n` numbered from the given start. */
  readonly where: string
  readonly params: ReadonlyArray<unknown>
}

/** A segment that does not parse (the message names the term); tagged so the API maps it to a 400. */
export class SegmentInvalid extends Error {
  override readonly name = "SegmentInvalid"
  readonly _tag = "SegmentInvalid"
}

const DURATION = /^(\d{1,5})(h|d)$/

/** A tag: lower-case letters, digits, `_` and `-`, up to 32 (what `botfleet users tag` accepts too). */
export const TAG = /^[a-z0-9][a-z0-9_-]{0,31}$/

const LEGACY_PATH = /^[A-Za-z0-9_$-]{1,64}(\.[A-Za-z0-9_$-]{1,64}){0,7}$/

const hoursOf = (s: string): number => {
  const m = DURATION.exec(s)
  if (!m) throw new SegmentInvalid(`"${s}" is not a duration: use hours or days, e.g. 12h or 7d`)
  return Number(m[1]) * (m[2] === "d" ? 24 : 1)
}

const tagsOf = (s: string): ReadonlyArray<string> => {
  const tags = s.split("|").map((t) => t.trim().toLowerCase())
  const bad = tags.find((t) => !TAG.test(t))
  if (bad !== undefined) throw new SegmentInvalid(`tag ${JSON.stringify(bad)} is not a tag: 1 to 32 lower-case letters, digits, _ or -`)
  return tags
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
    } else if ((m = /^tag(!?=)(.*)$/.exec(term))) {
      const tagged =
        `EXISTS (SELECT 1 FROM bot_sessions t WHERE t.bot_id = bot_users.bot_id AND t.session_key = 'tags:' || bot_users.user_id ` +
        `AND jsonb_exists_any(t.data, ${param(tagsOf(m[2]!))}::text[]))`
      where.push(m[1] === "=" ? tagged : `NOT ${tagged}`)
    } else if ((m = /^legacy\.([^=]+)=(.*)$/.exec(term))) {
      if (!LEGACY_PATH.test(m[1]!)) throw new SegmentInvalid(`"${m[1]}" is not a legacy field: names of letters, digits, _, $ or -, joined with dots`)
      if (m[2]!.length > 200) throw new SegmentInvalid(`the value of "legacy.${m[1]}" is longer than 200 characters`)
      const path = param(m[1]!.split("."))
      const value = param(m[2]!)
      where.push(
        `(EXISTS (SELECT 1 FROM imported_records r WHERE r.bot_id = bot_users.bot_id AND r.collection = 'users' ` +
          `AND r.record_key = bot_users.user_id::text AND r.record #>> ${path}::text[] = ${value}) ` +
          `OR EXISTS (SELECT 1 FROM bot_sessions s WHERE s.bot_id = bot_users.bot_id AND s.user_id = bot_users.user_id ` +
          `AND s.data #>> ${path}::text[] = ${value}))`
      )
    } else {
      throw new SegmentInvalid(`"${term}" is not a segment term: use all, language=de, seen<7d, seen>30d, messages>=3, tag=vip or legacy.<field>=<value>`)
    }
  }
  return { where: where.length === 0 ? "TRUE" : where.join(" AND "), params }
}
