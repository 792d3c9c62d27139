import { Schema } from "effect"

/*
 * What a bot actor is asked to do: imperative inputs, decided into past-tense events. Every input
 * carries `at`, the time recorded at the edge (Effect Clock), so the decider never reads a clock
 * and replay re-derives the same events. Schemas, because inputs cross thread boundaries.
 */

const At = Schema.String

/** An inbox entry to handle; `inboxId` is the inbox position the append advances the cursor to. */
export const HandleUpdate = Schema.TaggedStruct("HandleUpdate", { inboxId: Schema.String, update: Schema.Unknown, at: At })
/** The handler failed on this entry: record why and move the cursor past it. */
export const FailUpdate = Schema.TaggedStruct("FailUpdate", {
  inboxId: Schema.String,
  update: Schema.Unknown,
  reason: Schema.String,
  at: At
})
export const Register = Schema.TaggedStruct("Register", {
  ownerId: Schema.String,
  name: Schema.String,
  kind: Schema.String,
  mode: Schema.Literal("webhook", "polling", "sandbox"),
  tokenCiphertext: Schema.optional(Schema.String),
  config: Schema.optional(Schema.Unknown),
  at: At
})
/** A JSON merge patch (RFC 7386) of the configuration, applied by the running actor. */
export const ChangeConfig = Schema.TaggedStruct("ChangeConfig", { patch: Schema.Unknown, at: At })
/** A new token (checked with getMe and sealed by the caller: ciphertext only). */
export const RotateToken = Schema.TaggedStruct("RotateToken", { tokenCiphertext: Schema.String, at: At })
export const Start = Schema.TaggedStruct("Start", { nodeId: Schema.String, fence: Schema.Number, at: At })
export const Stop = Schema.TaggedStruct("Stop", { nodeId: Schema.String, reason: Schema.String, at: At })
export const RecordCrash = Schema.TaggedStruct("RecordCrash", {
  nodeId: Schema.String,
  reason: Schema.String,
  attempt: Schema.Number,
  at: At
})
export const GiveUp = Schema.TaggedStruct("GiveUp", { lastError: Schema.String, attempts: Schema.Number, at: At })
export const Remove = Schema.TaggedStruct("Remove", { reason: Schema.String, at: At })

export const BotInput = Schema.Union(
  HandleUpdate,
  FailUpdate,
  Register,
  ChangeConfig,
  RotateToken,
  Start,
  Stop,
  RecordCrash,
  GiveUp,
  Remove
)
export type BotInput = typeof BotInput.Type
export type InputOf<T extends BotInput["_tag"]> = Extract<BotInput, { _tag: T }>
