import { Schema } from "effect"

/*
 * Every event botfleet records, as past-tense facts. Each payload schema is the CURRENT version;
 * older versions are upcast on read (see registry.ts), never rewritten in the log.
 * Secrets never appear here in clear: tokens travel only as ciphertext.
 */

const Json = Schema.Unknown

export const BotMode = Schema.Literal("webhook", "polling", "sandbox")

/** v2 added `kind` (v1 bots were all of the built-in kind) and `mode`. */
export const BotRegistered = Schema.TaggedStruct("BotRegistered", {
  ownerId: Schema.String,
  name: Schema.String,
  kind: Schema.String,
  mode: BotMode,
  tokenCiphertext: Schema.optional(Schema.String),
  config: Schema.optional(Json)
})

export const BotConfigChanged = Schema.TaggedStruct("BotConfigChanged", {
  /** A JSON merge patch (RFC 7386) of the bot's configuration. */
  patch: Json
})

export const BotTokenRotated = Schema.TaggedStruct("BotTokenRotated", {
  tokenCiphertext: Schema.String
})

export const BotStarted = Schema.TaggedStruct("BotStarted", { nodeId: Schema.String, fence: Schema.Number })
export const BotStopped = Schema.TaggedStruct("BotStopped", { nodeId: Schema.String, reason: Schema.String })
export const BotCrashed = Schema.TaggedStruct("BotCrashed", {
  nodeId: Schema.String,
  reason: Schema.String,
  attempt: Schema.Number
})
export const BotGaveUp = Schema.TaggedStruct("BotGaveUp", { lastError: Schema.String, attempts: Schema.Number })
export const BotRemoved = Schema.TaggedStruct("BotRemoved", { reason: Schema.String })

/** An inbox entry reached the bot. `inboxId` is the inbox cursor the append advances. */
export const UpdateReceived = Schema.TaggedStruct("UpdateReceived", {
  inboxId: Schema.String,
  updateId: Schema.Number,
  update: Json,
  receivedAt: Schema.String
})
export const UpdateDuplicateDropped = Schema.TaggedStruct("UpdateDuplicateDropped", {
  inboxId: Schema.String,
  updateId: Schema.Number
})
export const UpdateFailed = Schema.TaggedStruct("UpdateFailed", {
  inboxId: Schema.String,
  updateId: Schema.Number,
  reason: Schema.String
})

export const BotApiCallIntended = Schema.TaggedStruct("BotApiCallIntended", {
  /** `<update_id>:<n>`: the n-th call the handler made for that update. */
  callId: Schema.String,
  method: Schema.String,
  params: Json,
  /**
   * true: the handler awaits the result, so the update is decided again once it is recorded (its
   * handling is recorded after its calls). Absent in streams written before handlers awaited calls.
   */
  awaited: Schema.optional(Schema.Boolean)
})
export const BotApiCallSucceeded = Schema.TaggedStruct("BotApiCallSucceeded", {
  callId: Schema.String,
  result: Json
})
export const BotApiCallFailed = Schema.TaggedStruct("BotApiCallFailed", {
  callId: Schema.String,
  errorCode: Schema.Number,
  description: Schema.String,
  retryAfter: Schema.optional(Schema.Number)
})
/** A crash between intent and result: whether Telegram acted is unknown, so it is never re-sent. */
export const BotApiCallOutcomeUnknown = Schema.TaggedStruct("BotApiCallOutcomeUnknown", {
  callId: Schema.String,
  reason: Schema.String
})

export const MessageReceived = Schema.TaggedStruct("MessageReceived", {
  chatId: Schema.Number,
  chatType: Schema.String,
  userId: Schema.optional(Schema.Number),
  messageId: Schema.Number,
  text: Schema.optional(Schema.String),
  at: Schema.String
})
export const ReplySent = Schema.TaggedStruct("ReplySent", {
  chatId: Schema.Number,
  messageId: Schema.Number,
  text: Schema.String,
  inReplyTo: Schema.optional(Schema.Number),
  at: Schema.String
})

/** v2 split `name` into first/last name and added the language. */
export const UserSeen = Schema.TaggedStruct("UserSeen", {
  userId: Schema.Number,
  firstName: Schema.String,
  lastName: Schema.optional(Schema.String),
  username: Schema.optional(Schema.String),
  languageCode: Schema.optional(Schema.String),
  at: Schema.String
})
export const UserBlockedBot = Schema.TaggedStruct("UserBlockedBot", {
  userId: Schema.Number,
  at: Schema.String,
  /**
   * The bot's newest inbox entry when the block was learned: the user's private messages in later
   * entries were written after it, so they have unblocked the bot. Absent in older streams.
   */
  afterEntry: Schema.optional(Schema.String)
})
/** The user wrote to the bot in private after blocking it: Telegram has unblocked the bot for them. */
export const UserUnblockedBot = Schema.TaggedStruct("UserUnblockedBot", { userId: Schema.Number, at: Schema.String })

export const SessionChanged = Schema.TaggedStruct("SessionChanged", {
  key: Schema.String,
  /** A JSON merge patch of the session, never the whole session. */
  patch: Json
})

export const SnapshotTaken = Schema.TaggedStruct("SnapshotTaken", { atVersion: Schema.Number })

/** A record brought over from the legacy JSON bot; `source` names file and JSON path. */
export const LegacyRecordImported = Schema.TaggedStruct("LegacyRecordImported", {
  importId: Schema.String,
  collection: Schema.String,
  key: Schema.String,
  record: Json,
  source: Schema.String,
  checksum: Schema.String,
  /** When it was imported: what a user it makes known was first seen at. Absent in older events. */
  at: Schema.optional(Schema.String)
})

/**
 * A live node setting changed (`botfleet config set`): a fleet event, on the fleet's own stream
 * (FLEET_STREAM, never a bot's). `value` null: back to the value the node started with. `nodes`:
 * each node that applied it, with the value it had before and its new value. Who: the envelope's
 * actor; when: its occurredAt. Settings that can change live are never secret.
 */
export const FleetSettingChanged = Schema.TaggedStruct("FleetSettingChanged", {
  setting: Schema.String,
  value: Schema.NullOr(Schema.String),
  /** "all", or the one node it was sent to. */
  scope: Schema.String,
  nodes: Schema.Array(Schema.Struct({ nodeId: Schema.String, old: Schema.String, value: Schema.String, source: Schema.String }))
})

/**
 * A user of a bot was forgotten (`botfleet users forget`, docs/privacy.md): their key is destroyed,
 * so every personal field sealed with it reads `[erased]`, and their projection rows are purged.
 * A fleet event (FLEET_STREAM): recorded by whoever ran the command, whether or not a node runs
 * the bot. Holds no personal data: the bot and the user's numeric Telegram id, which every event
 * of that user carries in clear anyway. Who: the envelope's actor.
 */
export const UserForgotten = Schema.TaggedStruct("UserForgotten", {
  botId: Schema.String,
  userId: Schema.Number,
  /** Events of the user in that bot's log still holding personal fields in clear (written before sealing existed). */
  clearTextEvents: Schema.Number
})

/**
 * The bot answered update `updateId` with a model's completion: the turn joins the
 * chat's conversation memory and its tokens count against the day's budgets (`day`, UTC).
 */
export const AiReplied = Schema.TaggedStruct("AiReplied", {
  chatId: Schema.Number,
  userId: Schema.optional(Schema.Number),
  updateId: Schema.Number,
  model: Schema.String,
  day: Schema.String,
  promptTokens: Schema.Number,
  completionTokens: Schema.Number,
  /** The user's message and the model's answer (before the persona dressed it). */
  user: Schema.String,
  assistant: Schema.String,
  at: Schema.String
})
/** The oldest `dropped` turns of a chat's memory left it, folded into its rolling summary. */
export const ConversationSummarized = Schema.TaggedStruct("ConversationSummarized", {
  chatId: Schema.Number,
  summary: Schema.String,
  dropped: Schema.Number
})
/** The bot answered with its AI fallback instead of a model's reply, and why. */
export const AiFallbackUsed = Schema.TaggedStruct("AiFallbackUsed", {
  chatId: Schema.Number,
  userId: Schema.optional(Schema.Number),
  reason: Schema.Literal("unavailable", "timeout", "rate_limited", "refused", "over_budget", "unknown", "not_configured"),
  /** What failed (an error's description, the budget that was spent); never a key. */
  detail: Schema.optional(Schema.String),
  day: Schema.String,
  at: Schema.String
})
/** What the bot learned of how a user likes to be spoken to (only the fields that changed). */
export const PersonalityAdapted = Schema.TaggedStruct("PersonalityAdapted", {
  userId: Schema.Number,
  language: Schema.optional(Schema.String),
  formality: Schema.optional(Schema.Literal("casual", "neutral", "formal")),
  length: Schema.optional(Schema.Literal("short", "medium", "long")),
  at: Schema.String
})

export const DomainEvent = Schema.Union(
  BotRegistered,
  BotConfigChanged,
  BotTokenRotated,
  BotStarted,
  BotStopped,
  BotCrashed,
  BotGaveUp,
  BotRemoved,
  UpdateReceived,
  UpdateDuplicateDropped,
  UpdateFailed,
  BotApiCallIntended,
  BotApiCallSucceeded,
  BotApiCallFailed,
  BotApiCallOutcomeUnknown,
  MessageReceived,
  ReplySent,
  UserSeen,
  UserBlockedBot,
  SessionChanged,
  SnapshotTaken,
  LegacyRecordImported,
  UserUnblockedBot,
  FleetSettingChanged,
  AiReplied,
  ConversationSummarized,
  AiFallbackUsed,
  PersonalityAdapted,
  UserForgotten
)
export type DomainEvent = typeof DomainEvent.Type
export type EventType = DomainEvent["_tag"]
export type EventOf<T extends EventType> = Extract<DomainEvent, { _tag: T }>
