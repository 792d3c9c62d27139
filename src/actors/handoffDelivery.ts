import { Effect } from "effect"
import type { EventLogService } from "../events/eventLog.js"
import type { DomainEvent } from "../events/schema/catalogue.js"
import type { CallExecutor } from "./actor.js"
import { HANDOFF_METHOD, handoffIdOf, handoffUpdate, parseHandoffRequest } from "./decider/handoff.js"
import { BOT_MESSAGE_METHOD, botMessageIdOf, botMessageUpdate, parseBotMessageRequest } from "./decider/botMessage.js"
import type { EventArchiveService } from "./eventArchive.js"
import type { InboxService } from "./inbox.js"

/**
 * Delivers handoffs and bot messages (decider/handoff.ts, decider/botMessage.ts): the call
 * executor's branch for `botfleet.handoff` and `botfleet.message` intents, every other intent
 * goes to Telegram as before.
 *
 * The target's owner is read from its stream (the owner is fixed at registration: the first
 * event, from the archive when the hot log was trimmed); a handoff across owners, to an unknown
 * bot or with bad params is refused (recorded as `BotApiCallFailed`, nothing delivered). A store
 * that cannot be reached throws: the actor stops the batch and, decided again after its restart,
 * the handoff is sent again (idempotent, the target drops the second copy), never lost.
 */
export interface HandoffPorts {
  /** The owner of a registered bot, or null when there is no such bot. */
  readonly ownerOf: (botId: string) => Promise<string | null>
  /** Puts an update into the bot's inbox, durably, before resolving. */
  readonly deliver: (botId: string, update: unknown) => Promise<void>
}

const failed = (callId: string, errorCode: number, description: string): ReadonlyArray<DomainEvent> => [
  { _tag: "BotApiCallFailed", callId, errorCode, description }
]

/** The target's owner check shared by handoffs and messages: null when the target may be reached, else the refusal. */
const refusal = async (ports: HandoffPorts, callId: string, what: string, fromOwner: string | null, to: string): Promise<ReadonlyArray<DomainEvent> | null> => {
  if (fromOwner === null) return failed(callId, 400, `Bad Request: ${what} refused: the bot has no owner`)
  const owner = await ports.ownerOf(to)
  if (owner === null) return failed(callId, 404, `Not Found: ${what} refused: no bot ${to} in the fleet`)
  // the owner's name is not told: a bot of another owner is none of this owner's business
  if (owner !== fromOwner) return failed(callId, 403, `Forbidden: ${what} refused: bot ${to} belongs to another owner`)
  return null
}

/** Wraps the node's call executor: handoff and message intents are delivered to the target's inbox, the rest sent as before. */
export const withHandoffs = (execute: CallExecutor | undefined, ports: HandoffPorts): CallExecutor => async (botId, state, intent) => {
  if (intent.method === BOT_MESSAGE_METHOD) {
    const req = parseBotMessageRequest(intent.params, botId)
    if (typeof req === "string") return failed(intent.callId, 400, `Bad Request: message refused: ${req}`)
    const refused = await refusal(ports, intent.callId, "message", state.ownerId, req.to)
    if (refused) return refused
    const messageId = botMessageIdOf(botId, intent.callId)
    await ports.deliver(req.to, botMessageUpdate({ ...req, messageId, from: botId, fromOwner: state.ownerId! }))
    return [{ _tag: "BotApiCallSucceeded", callId: intent.callId, result: { messageId, to: req.to, name: req.name, delivered: true } }]
  }
  if (intent.method !== HANDOFF_METHOD) {
    if (!execute) return failed(intent.callId, 0, "nothing was sent: this actor has no Bot API client")
    return execute(botId, state, intent)
  }
  const req = parseHandoffRequest(intent.params, botId)
  if (typeof req === "string") return failed(intent.callId, 400, `Bad Request: handoff refused: ${req}`)
  const refused = await refusal(ports, intent.callId, "handoff", state.ownerId, req.to)
  if (refused) return refused
  const handoffId = handoffIdOf(botId, intent.callId)
  await ports.deliver(req.to, handoffUpdate({ ...req, handoffId, from: botId, fromOwner: state.ownerId! }))
  return [{ _tag: "BotApiCallSucceeded", callId: intent.callId, result: { handoffId, to: req.to, delivered: true } }]
}

/** The handoff ports over a node's (or thread's) log, archive and inboxes. */
export const handoffPortsOf = (o: { readonly log: EventLogService; readonly inbox: InboxService; readonly archive?: EventArchiveService | undefined }): HandoffPorts => ({
  ownerOf: (botId) =>
    Effect.runPromise(
      Effect.gen(function* () {
        let first = (yield* o.log.readStream(botId, { from: 1, limit: 1 }))[0]
        // a trimmed hot log starts past version 1: the registration is in the archive
        if (first?.version !== 1 && o.archive && (yield* o.log.streamVersion(botId)) > 0) first = (yield* o.archive.readStream(botId, 1, 1))[0]
        return first?.data._tag === "BotRegistered" ? first.data.ownerId : null
      })
    ),
  deliver: (botId, update) => Effect.runPromise(Effect.asVoid(o.inbox.enqueue(botId, update)))
})
