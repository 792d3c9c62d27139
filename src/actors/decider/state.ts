import type { DomainEvent, EventOf } from "../../events/schema/catalogue.js"
import { addSeen, emptyWindow, hasSeen } from "./dedupeWindow.js"
import type { DedupeWindow } from "./dedupeWindow.js"
import { Entries, legacyKey, readUser, sessionKey, userEntry, userKey } from "./entries.js"
import { UNKNOWN_TIME, legacySessionTarget, legacyUser, legacyUserOf } from "./legacy.js"
import type { KnownUser } from "./entries.js"
import { mergeObject, mergePatch } from "./mergePatch.js"
import type { Json, JsonObject } from "./mergePatch.js"
import { PersistentMap } from "./persistentMap.js"
import { isoToMs } from "./time.js"
import { aiEntryWrites } from "../../ai/aiFold.pure.js"

export type { KnownUser }

export type BotStatus = "unregistered" | "registered" | "running" | "stopped" | "failed" | "removed"

/** How a recorded call ended; null while its outcome is not recorded. */
export type CallOutcome =
  | { readonly _tag: "Succeeded"; readonly result: Json }
  | { readonly _tag: "Failed"; readonly errorCode: number; readonly description: string; readonly retryAfter?: number | undefined }
  | { readonly _tag: "Unknown"; readonly reason: string }

export interface OpenCall {
  readonly callId: string
  readonly method: string
  readonly outcome: CallOutcome | null
}

/** The update a call id belongs to (`<update_id>:<n>`), or null for a call id of another shape. */
export const updateIdOfCall = (callId: string): number | null => {
  const m = /^(-?\d+):\d+$/.exec(callId)
  return m ? Number(m[1]) : null
}

const withOutcome = (state: BotState, callId: string, outcome: CallOutcome): BotState => {
  const updateId = updateIdOfCall(callId)
  const open = updateId === null ? undefined : state.openCalls.get(updateId)
  const pendingCalls = state.pendingCalls.without(callId)
  if (!open || !open.some((c) => c.callId === callId)) return { ...state, pendingCalls }
  return { ...state, pendingCalls, openCalls: state.openCalls.with(updateId!, open.map((c) => (c.callId === callId ? { ...c, outcome } : c))) }
}

const closeCalls = (open: PersistentMap<number, ReadonlyArray<OpenCall>>, updateId: number) => (open.has(updateId) ? open.without(updateId) : open)

/**
 * A bot's state: the fold of its events, nothing else. Immutable: `evolve` returns a new state
 * sharing what did not change.
 *
 * Its size is bounded whatever the bot's popularity or age: the bot-level fields are small (the
 * dedupe window is capped, open calls are those of updates in flight), and everything that grows
 * with users (users, sessions) is in `entries`, of which a running actor holds only the ones its
 * recent updates touched (see entries.ts).
 */
export interface BotState {
  readonly status: BotStatus
  readonly ownerId: string | null
  readonly name: string | null
  readonly kind: string | null
  readonly mode: "webhook" | "polling" | "sandbox" | null
  /** Ciphertext only; the token is never held in clear in the state. */
  readonly tokenCiphertext: string | null
  readonly config: JsonObject
  /** Inbox position of the last entry handled (received, dropped or failed); null before the first. */
  readonly inboxCursor: string | null
  /** update_ids handled within the dedupe window (bounded: runs of consecutive ids). */
  readonly seenUpdates: DedupeWindow
  readonly updatesHandled: number
  readonly updatesFailed: number
  readonly duplicatesDropped: number
  /** Users (`u:<id>`) and sessions (`s:<key>`): all of them in a fold, the resident ones in an actor. */
  readonly entries: Entries
  /** Bot API calls whose intent is recorded and whose outcome is not (callId → method). */
  readonly pendingCalls: PersistentMap<string, string>
  /**
   * The recorded calls of updates being handled (update_id → calls in call order): an update whose
   * handler awaits a Bot API result is decided again once the result is recorded, and its handler
   * gets the recorded results back. Cleared when the update's handling is recorded.
   */
  readonly openCalls: PersistentMap<number, ReadonlyArray<OpenCall>>
  readonly node: { readonly nodeId: string; readonly fence: number } | null
  readonly crashes: number
  readonly lastError: string | null
}

export const initialState: BotState = {
  status: "unregistered",
  ownerId: null,
  name: null,
  kind: null,
  mode: null,
  tokenCiphertext: null,
  config: {},
  inboxCursor: null,
  seenUpdates: emptyWindow,
  updatesHandled: 0,
  updatesFailed: 0,
  duplicatesDropped: 0,
  entries: Entries.empty(true),
  pendingCalls: PersistentMap.empty(),
  openCalls: PersistentMap.empty(),
  node: null,
  crashes: 0,
  lastError: null
}

/** Orders inbox entry ids (`<ms>-<seq>`, or `<seq>-0`), numerically by part: negative when `a` comes first. */
export const compareEntryIds = (a: string, b: string): number => {
  const [am = "0", as = "0"] = a.split("-")
  const [bm = "0", bs = "0"] = b.split("-")
  return Number(am) - Number(bm) || Number(as) - Number(bs)
}

/**
 * Whether a message the user sent in inbox entry `inboxId`, received at `at`, was written after
 * their block was learned: then they have unblocked the bot (writing to a bot one blocked
 * restarts it). Decided by inbox order when the block recorded the newest entry at the time;
 * by time for blocks recorded before that (an unknown time: yes).
 */
export const writtenAfterBlock = (user: KnownUser, inboxId: string, at: string): boolean => {
  if (user.blockedAfterEntry !== undefined) return compareEntryIds(inboxId, user.blockedAfterEntry) > 0
  return user.blockedAt === undefined || !(isoToMs(at) <= isoToMs(user.blockedAt))
}

/** Whether `updateId` was handled within the dedupe window before `at` (recorded time). */
export const isRecentUpdate = (state: BotState, updateId: number, at: string): boolean => hasSeen(state.seenUpdates, updateId, isoToMs(at))

const withUser = (state: BotState, userId: number, user: KnownUser): BotState => ({
  ...state,
  entries: state.entries.write(userKey(userId), userEntry(user))
})

/** Applies one event. Total: every event type has a case, and none can fail (its entries resident). */
export const evolve = (state: BotState, event: DomainEvent): BotState => {
  switch (event._tag) {
    case "BotRegistered":
      return {
        ...state,
        status: state.status === "unregistered" ? "registered" : state.status,
        ownerId: event.ownerId,
        name: event.name,
        kind: event.kind,
        mode: event.mode,
        tokenCiphertext: event.tokenCiphertext ?? null,
        config: event.config === undefined ? state.config : mergeObject({}, event.config)
      }
    case "BotConfigChanged":
      return { ...state, config: mergeObject(state.config, event.patch) }
    case "BotTokenRotated":
      return { ...state, tokenCiphertext: event.tokenCiphertext }
    case "BotStarted":
      return { ...state, status: "running", node: { nodeId: event.nodeId, fence: event.fence } }
    case "BotStopped":
      return { ...state, status: state.status === "removed" ? "removed" : "stopped" }
    case "BotCrashed":
      // node cleared: the restarted actor records a fresh BotStarted
      return { ...state, crashes: state.crashes + 1, lastError: event.reason, node: null }
    case "BotGaveUp":
      return { ...state, status: "failed", lastError: event.lastError }
    case "BotRemoved":
      return { ...state, status: "removed" }
    case "UpdateReceived":
      return {
        ...state,
        inboxCursor: event.inboxId,
        seenUpdates: addSeen(state.seenUpdates, event.updateId, isoToMs(event.receivedAt)),
        updatesHandled: state.updatesHandled + 1,
        openCalls: closeCalls(state.openCalls, event.updateId)
      }
    case "UpdateDuplicateDropped":
      return { ...state, inboxCursor: event.inboxId, duplicatesDropped: state.duplicatesDropped + 1 }
    case "UpdateFailed":
      return { ...state, inboxCursor: event.inboxId, updatesFailed: state.updatesFailed + 1, openCalls: closeCalls(state.openCalls, event.updateId) }
    case "BotApiCallIntended": {
      const pendingCalls = state.pendingCalls.with(event.callId, event.method)
      const updateId = updateIdOfCall(event.callId)
      // an intent recorded with its update already complete (streams written before handlers awaited their calls) opens nothing
      if (updateId === null || event.awaited !== true) return { ...state, pendingCalls }
      const open = state.openCalls.get(updateId) ?? []
      // an idempotent call sent again after a crash (a handoff, handoff.ts) is the same open call
      if (open.some((c) => c.callId === event.callId)) return { ...state, pendingCalls }
      const calls = [...open, { callId: event.callId, method: event.method, outcome: null }]
      return { ...state, pendingCalls, openCalls: state.openCalls.with(updateId, calls) }
    }
    case "BotApiCallSucceeded":
      return withOutcome(state, event.callId, { _tag: "Succeeded", result: (event.result ?? null) as Json })
    case "BotApiCallFailed":
      return withOutcome(state, event.callId, {
        _tag: "Failed",
        errorCode: event.errorCode,
        description: event.description,
        ...(event.retryAfter !== undefined ? { retryAfter: event.retryAfter } : {})
      })
    case "BotApiCallOutcomeUnknown":
      return withOutcome(state, event.callId, { _tag: "Unknown", reason: event.reason })
    case "UserSeen": {
      const before = readUser(state.entries, event.userId)
      return withUser(state, event.userId, {
        firstName: event.firstName,
        lastName: event.lastName,
        username: event.username,
        languageCode: event.languageCode,
        firstSeen: before?.firstSeen ?? event.at,
        lastSeen: event.at,
        blocked: before?.blocked ?? false,
        blockedAt: before?.blockedAt,
        blockedAfterEntry: before?.blockedAfterEntry
      })
    }
    case "UserBlockedBot": {
      const before = readUser(state.entries, event.userId)
      return withUser(state, event.userId, {
        firstName: before?.firstName ?? "",
        lastName: before?.lastName,
        username: before?.username,
        languageCode: before?.languageCode,
        firstSeen: before?.firstSeen ?? event.at,
        lastSeen: before?.lastSeen ?? event.at,
        blocked: true,
        blockedAt: event.at,
        blockedAfterEntry: event.afterEntry
      })
    }
    case "UserUnblockedBot": {
      const before = readUser(state.entries, event.userId)
      if (!before) return state
      return withUser(state, event.userId, { ...before, blocked: false, blockedAt: undefined, blockedAfterEntry: undefined })
    }
    case "SessionChanged": {
      const key = sessionKey(event.key)
      return { ...state, entries: state.entries.write(key, mergePatch(state.entries.read(key) ?? null, event.patch)) }
    }
    case "MessageReceived": {
      // streams written before blocks recorded their inbox position: a user who writes in private
      // after the block (by receive time) has unblocked the bot. Newer blocks are lifted by the
      // decider's UserUnblockedBot instead.
      const from = event.userId
      if (!(event.chatType === "private" && from !== undefined && from === event.chatId)) return state
      const known = readUser(state.entries, from)
      if (!known?.blocked || known.blockedAfterEntry !== undefined) return state
      if (known.blockedAt !== undefined && isoToMs(event.at) <= isoToMs(known.blockedAt)) return state
      return withUser(state, from, { ...known, blocked: false, blockedAt: undefined })
    }
    case "LegacyRecordImported":
      return evolveLegacy(state, event)
    case "AiReplied":
    case "ConversationSummarized":
    case "AiFallbackUsed":
    case "PersonalityAdapted": {
      // AI memory, budgets and per-user adaptation live in entries of their own (src/ai/aiFold.pure.ts)
      let entries = state.entries
      for (const [key, value] of aiEntryWrites(event, (k) => entries.read(k))) entries = entries.write(key, value)
      return { ...state, entries }
    }
    case "ReplySent":
    case "SnapshotTaken":
    case "FleetSettingChanged": // fleet events: never in a bot's stream
    case "UserForgotten":
      return state
    default:
      return absurd(event)
  }
}

/**
 * An imported legacy record (see legacy.ts): a session replaces the session entry the runtime
 * reads for its user and chat, other records are kept as legacy entries, and the user a record
 * names becomes known. The latest import of a record wins, as in the log.
 */
const evolveLegacy = (state: BotState, event: EventOf<"LegacyRecordImported">): BotState => {
  const record = (event.record ?? null) as Json
  // a legacy entry wraps its record: a record that is null must not read as "no such entry"
  const [own, value] =
    event.collection === "sessions" ? [sessionKey(legacySessionTarget(event.key).key), record] : [legacyKey(event.collection, event.key), { record }]
  let next: BotState = { ...state, entries: state.entries.write(own, value) }
  const user = legacyUserOf(event)
  if (user) {
    const merged = legacyUser(readUser(next.entries, user.userId), user.profile, event.at ?? UNKNOWN_TIME)
    if (merged) next = withUser(next, user.userId, merged)
  }
  return next
}

/** Exhaustiveness: a new event type without a case fails type checking here. */
export const absurd = (x: never): never => {
  throw new Error(`unhandled case ${JSON.stringify(x)}`)
}

/** Folds events onto a state. */
export const fold = (events: Iterable<DomainEvent>, from: BotState = initialState): BotState => {
  let s = from
  for (const e of events) s = evolve(s, e)
  return s
}
