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
  })

  it("never puts input text into the SQL itself (property)", () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        try {
          const { where, params } = segmentSql(s, 1)
          // the SQL is built only from fixed fragments and $n placeholders
          return /^[a-z_() ><=$0-9>=,.TRUEORLIKEANDmake_intervalhours-]*$/i.test(where) && params.every((p) => typeof p === "number" || /^[a-z|-]+%$/.test(String(p)))
        } catch (e) {
          return e instanceof SegmentInvalid
        }
      })
    )
  })
})
