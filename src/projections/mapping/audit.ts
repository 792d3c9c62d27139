import type { DomainEvent } from "../../events/schema/catalogue.js"

/*
 * The audit log's "what": a summary of control-plane events. Redacted by construction: it is
 * built field by field (never by copying a payload), so token ciphertext and config values never
 * reach it; free text (reasons, errors) is scrubbed of anything shaped like a bot token.
 */

/** A Telegram bot token (`123456789:AA...`), also inside a Bot API URL (`/bot123:AA.../`). */
const TOKEN = /\d{5,}:[A-Za-z0-9_-]{30,}/g

/** Free text with anything token-shaped replaced. */
export const redactText = (s: string): string => s.replace(TOKEN, "[redacted]")

const keysOf = (v: unknown): string[] =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? Object.keys(v).sort() : []

/** `owner:42` -> `owner`; the kinds of actor DESIGN.md names, anything else `other`. */
export const actorKind = (actor: string): string => {
  const kind = actor.split(":", 1)[0] ?? ""
  return ["owner", "token", "user", "system", "import"].includes(kind) ? kind : "other"
}

/** The redacted summary of an audited event, or null when the event type is not audited (traffic). */
export const auditSummary = (e: DomainEvent): Record<string, unknown> | null => {
  switch (e._tag) {
    case "BotRegistered":
      return { name: e.name, kind: e.kind, mode: e.mode, hasToken: e.tokenCiphertext !== undefined, configKeys: keysOf(e.config) }
    case "BotConfigChanged":
      return { changedKeys: keysOf(e.patch) }
    case "BotTokenRotated":
      return { token: "rotated" }
    case "BotStarted":
      return { nodeId: e.nodeId, fence: e.fence }
    case "BotStopped":
      return { nodeId: e.nodeId, reason: redactText(e.reason) }
    case "BotCrashed":
      return { nodeId: e.nodeId, reason: redactText(e.reason), attempt: e.attempt }
    case "BotGaveUp":
      return { lastError: redactText(e.lastError), attempts: e.attempts }
    case "BotRemoved":
      return { reason: redactText(e.reason) }
    case "UpdateFailed":
      return { updateId: e.updateId, reason: redactText(e.reason) }
    case "BotApiCallFailed":
      return { callId: e.callId, errorCode: e.errorCode, description: redactText(e.description) }
    case "BotApiCallOutcomeUnknown":
      return { callId: e.callId, reason: redactText(e.reason) }
    case "SnapshotTaken":
      return { atVersion: e.atVersion }
    case "LegacyRecordImported":
      return { importId: e.importId, collection: e.collection, key: e.key, source: e.source }
    case "FleetSettingChanged":
      // live settings are never secret (secret settings need a restart), so values are shown
      return { setting: e.setting, value: e.value, scope: e.scope, nodes: e.nodes.map((n) => ({ nodeId: n.nodeId, old: n.old, value: n.value })) }
    case "UserForgotten":
      return { botId: e.botId, userId: e.userId, clearTextEvents: e.clearTextEvents }
    case "UpdateReceived":
    case "UpdateDuplicateDropped":
    case "BotApiCallIntended":
    case "BotApiCallSucceeded":
    case "MessageReceived":
    case "ReplySent":
    case "UserSeen":
    case "UserBlockedBot":
    case "UserUnblockedBot":
    case "SessionChanged":
    case "AiReplied":
    case "ConversationSummarized":
    case "AiFallbackUsed":
    case "PersonalityAdapted":
      return null
    default:
      return absurd(e)
  }
}

const absurd = (x: never): never => {
  throw new Error(`unhandled event ${JSON.stringify(x)}`)
}
