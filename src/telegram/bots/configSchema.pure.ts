import { Schema } from "effect"

/**
 * The built-in kind's configuration schema (effect/Schema): what `bots configure` and the API
 * accept for a bot of the built-in kind. Every field is optional (the bot falls back to a default,
 * see personality.pure.ts); anything not declared here is refused, so a typo is an error instead
 * of a silent no-op. To extend the built-in config (buttons, AI, personas...), add a field to
 * `builtinConfigFields`: the checks, the error paths and `--show` follow.
 */

/** A text the bot sends: Telegram takes at most 4,096 characters in a message. */
export const MessageText = Schema.String.pipe(
  Schema.minLength(1, { message: () => "must not be empty" }),
  Schema.maxLength(4096, { message: () => "must be at most 4096 characters (Telegram's limit for a message)" })
)

const ShortText = Schema.String.pipe(
  Schema.minLength(1, { message: () => "must not be empty" }),
  Schema.maxLength(256, { message: () => "must be at most 256 characters" })
)

export const TONES = ["plain", "friendly", "formal", "pirate"] as const

/** A command name as Telegram takes it (`/` optional): 1-32 lower-case letters, digits or `_`; start and help are built in. */
export const CommandName = Schema.String.pipe(
  Schema.filter((s) => /^\/?[a-z0-9_]{1,32}$/.test(s) || "a command is 1-32 lower-case letters, digits or _ (e.g. hours)"),
  Schema.filter((s) => !["start", "help"].includes(s.replace(/^\//, "")) || "start and help are built in: set greeting and help instead")
)

export const BuiltinCommand = Schema.Union(MessageText, Schema.Struct({ reply: MessageText, description: Schema.optional(ShortText) }))

export const Keyword = Schema.Struct({
  /** Replies when a message contains this text (case-insensitive). */
  match: ShortText,
  reply: MessageText
})

export const Personality = Schema.Struct({
  name: Schema.optional(Schema.NullOr(ShortText)),
  tone: Schema.optional(Schema.Literal(...TONES))
})

export const builtinConfigFields = {
  /** The /start text for a new user; {name} is their first name, {bot} the personality's name. */
  greeting: Schema.optional(MessageText),
  /** The first line of /help, before the commands. */
  help: Schema.optional(MessageText),
  commands: Schema.optional(Schema.Record({ key: CommandName, value: BuiltinCommand })),
  keywords: Schema.optional(Schema.Array(Keyword)),
  /** The reply to any other text; null: none. */
  fallback: Schema.optional(Schema.NullOr(MessageText)),
  personality: Schema.optional(Personality)
}

export const BuiltinConfigSchema = Schema.Struct(builtinConfigFields)
