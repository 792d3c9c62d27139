import { Either, Schema } from "effect"

/*
 * Owner ids key row-level security, the auditor's owner list and `owner:<id>` actors. They enter
 * through the CLI (`bots add --owner`), imports and restores (BotRegistered in an export or a
 * backup), and the REST API; every one of those paths validates here, and the event encoder
 * refuses a BotRegistered whose owner id fails (codec.ts), so no path can record one.
 *
 * Pure: no I/O, usable from pure code (the projections' mapping refuses such an owner too).
 */

/** Longest owner id accepted (characters). */
export const OWNER_ID_MAX_LENGTH = 64

/**
 * The safe alphabet: ASCII letters, digits, `_`, `.`, `@`, `-`. No comma, quote, brace, space,
 * backslash or control character, so an owner id can never be read as two ids by a list parser or
 * break out of a quoted literal; never empty, since `''` is what an unset per-transaction setting
 * reads back as. Same pattern as the migration's CHECK constraints (sql/0040).
 */
export const OWNER_ID_PATTERN = /^[A-Za-z0-9_.@-]{1,64}$/

/** A validated owner id. */
export const OwnerId = Schema.String.pipe(
  Schema.pattern(OWNER_ID_PATTERN, { message: () => "an owner id is 1 to 64 of A-Z a-z 0-9 _ . @ -" }),
  Schema.brand("OwnerId")
)
export type OwnerId = typeof OwnerId.Type

export type OwnerIdProblem = "NotText" | "Empty" | "TooLong" | "BadCharacter"

/** An owner id refused, with what was wrong. The value is cut to 80 characters in the message. */
export class OwnerIdInvalid extends Schema.TaggedError<OwnerIdInvalid>()("OwnerIdInvalid", {
  value: Schema.String,
  reason: Schema.Literal("NotText", "Empty", "TooLong", "BadCharacter")
}) {
  override get message() {
    const shown = JSON.stringify(this.value.length > 80 ? `${this.value.slice(0, 80)}…` : this.value)
    const why: Record<OwnerIdProblem, string> = {
      NotText: "it is not text",
      Empty: "it is empty",
      TooLong: `it is longer than ${OWNER_ID_MAX_LENGTH} characters`,
      BadCharacter: "it has a character outside A-Z a-z 0-9 _ . @ -"
    }
    return `owner id ${shown} refused: ${why[this.reason]} (an owner id is 1 to ${OWNER_ID_MAX_LENGTH} of A-Z a-z 0-9 _ . @ -)`
  }
}

/**
 * Validates an owner id. Guarantees: Right only for text matching OWNER_ID_PATTERN (hence
 * non-empty, at most 64 characters, no separator of any list format); Left names the first
 * problem found, in the order NotText, Empty, TooLong, BadCharacter.
 */
export const parseOwnerId = (value: unknown): Either.Either<OwnerId, OwnerIdInvalid> => {
  if (typeof value !== "string") return Either.left(new OwnerIdInvalid({ value: String(value), reason: "NotText" }))
  if (value.length === 0) return Either.left(new OwnerIdInvalid({ value, reason: "Empty" }))
  if (value.length > OWNER_ID_MAX_LENGTH) return Either.left(new OwnerIdInvalid({ value, reason: "TooLong" }))
  if (!OWNER_ID_PATTERN.test(value)) return Either.left(new OwnerIdInvalid({ value, reason: "BadCharacter" }))
  return Either.right(value as OwnerId)
}

/** True when `value` is a valid owner id. */
export const isOwnerId = (value: unknown): value is OwnerId => typeof value === "string" && OWNER_ID_PATTERN.test(value)
