import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { SegmentInvalid, segmentSql } from "../../src/broadcast/segment.pure.js"

describe("broadcast segments", () => {
  it("turns terms into parameterised conditions, all of which must hold", () => {
    expect(segmentSql("all", 2)).toEqual({ where: "TRUE", params: [] })
    expect(segmentSql("language=de|FR, seen<7d, messages>=3", 2)).toEqual({
      where: "(lower(language_code) LIKE $2 OR lower(language_code) LIKE $3) AND last_seen_at > now() - make_interval(hours => $4) AND messages_in >= $5",
      params: ["de%", "fr%", 168, 3]
    })
    expect(segmentSql("seen>12h", 1)).toEqual({ where: "last_seen_at <= now() - make_interval(hours => $1)", params: [12] })
  })

  it("refuses what it does not know, naming the term", () => {
    expect(() => segmentSql("", 1)).toThrow(SegmentInvalid)
    expect(() => segmentSql("lang=de", 1)).toThrow(/"lang=de" is not a segment term/)
    expect(() => segmentSql("seen<7w", 1)).toThrow(/"7w" is not a duration/)
    expect(() => segmentSql("tag=VIP gold", 1)).toThrow(/"vip gold" is not a tag/)
    expect(() => segmentSql("tag=", 1)).toThrow(SegmentInvalid)
    expect(() => segmentSql("legacy.a'b=1", 1)).toThrow(/"a'b" is not a legacy field/)
    expect(() => segmentSql("legacy..x=1", 1)).toThrow(SegmentInvalid)
    expect(() => segmentSql(`legacy.x=${"v".repeat(201)}`, 1)).toThrow(/longer than 200/)
  })

  it("reads tags and legacy fields as parameters", () => {
    const tagged = segmentSql("tag=VIP|gold", 3)
    expect(tagged.params).toEqual([["vip", "gold"]])
    expect(tagged.where).toContain("t.session_key = 'tags:' || bot_users.user_id AND jsonb_exists_any(t.data, $3::text[])")
    expect(segmentSql("tag!=banned", 1).where).toMatch(/^NOT EXISTS/)
    const legacy = segmentSql("legacy.profile.city=Oslo; DROP TABLE x, language=en", 2)
    // the value is a parameter, whatever it holds
    expect(legacy.params).toEqual([["profile", "city"], "Oslo; DROP TABLE x", "en%"])
    expect(legacy.where).toContain("r.record #>> $2::text[] = $3")
    expect(legacy.where).toContain("s.data #>> $2::text[] = $3")
    expect(legacy.where).not.toContain("Oslo")
  })

  it("never puts input text into the SQL itself (property)", () => {
    const term = fc.oneof(
      fc.string(),
      fc.string().map((s) => `tag=${s}`),
      fc.string().map((s) => `tag!=${s}`),
      fc.tuple(fc.string(), fc.string()).map(([k, v]) => `legacy.${k}=${v}`),
      fc.stringMatching(/^[a-z]{1,8}(\.[a-z]{1,8}){0,2}$/).map((k) => `legacy.${k}='; DROP TABLE bot_users; --`)
    )
    fc.assert(
      fc.property(fc.array(term, { minLength: 1, maxLength: 4 }).map((ts) => ts.join(",")), (s) => {
        try {
          const { where, params } = segmentSql(s, 1)
          // the SQL is built only from fixed fragments and $n placeholders: its only quoted texts are the fixed ones
          const unquoted = where.replaceAll("'tags:'", "").replaceAll("'users'", "")
          const fixed = /^[a-z_() ><=$0-9>=,.|:#\[\]]*$/i.test(unquoted)
          const plain = (p: unknown) => typeof p === "number" || typeof p === "string" || (Array.isArray(p) && p.every((x) => typeof x === "string"))
          return fixed && params.every(plain)
        } catch (e) {
          return e instanceof SegmentInvalid
        }
      })
    )
  })
})
