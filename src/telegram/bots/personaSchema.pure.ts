import { Schema } from "effect"
import { EMOJI_USES, FORMALITIES } from "./persona.pure.js"

/** The persona's fields beyond name and tone, as `bots configure` checks them (persona.pure.ts reads them). */
export const PersonaFields = {
  /** Whole words replaced in every reply, e.g. {"hello": "ahoy"}; the case of each word is kept. */
  vocabulary: Schema.optionalWith(
    Schema.Record({ key: Schema.String, value: Schema.String.pipe(Schema.maxLength(40, { message: () => "must be at most 40 characters" })) }).pipe(
      Schema.filter((r) =>
        Object.keys(r).flatMap((k) => (/^[\p{L}\p{N}' -]{1,40}$/u.test(k) ? [] : [{ path: [k], message: "a vocabulary word is 1-40 letters, digits, spaces, ' or -" }]))
      )
    ),
    { exact: true }
  ),
  emoji: Schema.optionalWith(Schema.Literal(...EMOJI_USES), { exact: true }),
  formality: Schema.optionalWith(Schema.Literal(...FORMALITIES), { exact: true }),
  /** ISO 639-1, e.g. en, de. */
  language: Schema.optionalWith(Schema.String.pipe(Schema.pattern(/^[a-z]{2}$/, { message: () => "must be a two-letter language code (ISO 639-1), e.g. en" })), { exact: true }),
  description: Schema.optionalWith(Schema.String.pipe(Schema.minLength(1, { message: () => "must not be empty" }), Schema.maxLength(1000, { message: () => "must be at most 1000 characters" })), { exact: true }),
  /** Learn users' language, formality and preferred length (default: when the bot has an ai section); false: do not learn users' language, formality and preferred length. */
  adapt: Schema.optionalWith(Schema.Boolean, { exact: true })
}
