import { Schema } from "effect"
import { AiConfigSchema } from "../../ai/aiConfig.pure.js"
import { PersonaFields } from "./personaSchema.pure.js"
import { interactionsConfigFields, startMenuProblem } from "./interactionsSchema.pure.js"
import { messagesConfigField } from "./botMessagesSchema.pure.js"

/**
 * The built-in kind's configuration schema (effect/Schema): what `bots configure` and the API
 * accept for a bot of the built-in kind. Every field is optional (the bot falls back to a default,
 * see personality.pure.ts; `exact`: a key is present with a value, or absent); anything not declared here is refused, so a typo is an error instead
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

/** Why a command name is not one Telegram takes (`/` optional: 1-32 lower-case letters, digits or `_`), or null. */
export const commandNameProblem = (name: string): string | null =>
  !/^\/?[a-z0-9_]{1,32}$/.test(name)
    ? "a command is 1-32 lower-case letters, digits or _ (e.g. hours)"
    : ["start", "help"].includes(name.replace(/^\//, ""))
      ? "start and help are built in: set greeting and help instead"
      : null

export const BuiltinCommand = Schema.Union(MessageText, Schema.Struct({ reply: MessageText, description: Schema.optionalWith(ShortText, { exact: true }) }))

export const Keyword = Schema.Struct({
  /** Replies when a message contains this text (case-insensitive). */
  match: ShortText,
  reply: MessageText
})

export const Personality = Schema.Struct({
  name: Schema.optionalWith(Schema.NullOr(ShortText), { exact: true }),
  tone: Schema.optionalWith(Schema.Literal(...TONES), { exact: true }),
  // the persona's other traits (vocabulary, emoji, formality, language, description, adapt)
  ...PersonaFields
})

export const builtinConfigFields = {
  /** The /start text for a new user; {name} is their first name, {bot} the personality's name. */
  greeting: Schema.optionalWith(MessageText, { exact: true }),
  /** The first line of /help, before the commands. */
  help: Schema.optionalWith(MessageText, { exact: true }),
  // names checked on the record, so a bad one is reported at its own path with its reason
  commands: Schema.optionalWith(
    Schema.Record({ key: Schema.String, value: BuiltinCommand }).pipe(
      Schema.filter((r) => Object.keys(r).flatMap((k) => {
        const problem = commandNameProblem(k)
        return problem === null ? [] : [{ path: [k], message: problem }]
      }))
    ),
    { exact: true }
  ),
  keywords: Schema.optionalWith(Schema.Array(Keyword), { exact: true }),
  /** The reply to any other text; null: none. */
  fallback: Schema.optionalWith(Schema.NullOr(MessageText), { exact: true }),
  personality: Schema.optionalWith(Personality, { exact: true }),
  /** Answers other texts with a model (src/ai/aiConfig.pure.ts, docs/ai.md). */
  ai: Schema.optionalWith(AiConfigSchema, { exact: true }),
  ...interactionsConfigFields,
  ...messagesConfigField
}

export const BuiltinConfigSchema = Schema.Struct(builtinConfigFields).pipe(Schema.filter(startMenuProblem))
