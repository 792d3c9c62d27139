import type { DomainEvent } from "../../events/schema/catalogue.js"
import { mergeObject, mergePatch } from "./mergePatch.js"
import type { Json, JsonObject } from "./mergePatch.js"
import { PersistentMap } from "./persistentMap.js"
import { isoToMs } from "./time.js"

export type BotStatus = "unregistered" | "registered" | "running" | "stopped" | "failed" | "removed"

export interface KnownUser {
  readonly firstName: string
  readonly lastName?: string | undefined
  readonly username?: string | undefined
  readonly languageCode?: string | undefined
  readonly firstSeen: string
  readonly lastSeen: string
  readonly blocked: boolean
  /** When the block was learned (a 403 recorded); a private message received after it lifts the block. */
  readonly blockedAt?: string | undefined
}

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
  /** update_id → recorded receive time (ms) of updates seen within the dedupe window. */
  readonly recentUpdates: PersistentMap<number, number>
  readonly updatesHandled: number
  readonly updatesFailed: number
  readonly duplicatesDropped: number
  readonly sessions: Readonly<Record<string, Json>>
  readonly users: PersistentMap<number, KnownUser>
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

/**
 * How long an update_id is remembered. Telegram redelivers for up to 24 h; the window is measured
 * in recorded time, so replay drops exactly what the live run dropped.
 */
export const DEDUPE_WINDOW_MS = 25 * 60 * 60 * 1000

export const initialState: BotState = {
  status: "unregistered",
  ownerId: null,
  name: null,
  kind: null,
  mode: null,
  tokenCiphertext: null,
  config: {},
  inboxCursor: null,
  recentUpdates: PersistentMap.empty(),
  updatesHandled: 0,
  updatesFailed: 0,
  duplicatesDropped: 0,
  sessions: {},
  users: PersistentMap.empty(),
  pendingCalls: PersistentMap.empty(),
  openCalls: PersistentMap.empty(),
  node: null,
  crashes: 0,
  lastError: null
}

/** Expired update ids are swept when the map's size reaches a multiple of this: amortised O(1) per update. */
const SWEEP_EVERY = 1024

/**
 * Remembers an update id with its recorded receive time. Expired ids are swept in bulk, at sizes
 * that depend only on the events, so replay sweeps exactly where the live run did; until swept, an
 * expired id is still ignored by `isRecentUpdate`, which compares times.
 */
const remember = (seen: PersistentMap<number, number>, updateId: number, at: string): PersistentMap<number, number> => {
  const t = isoToMs(at)
  const next = seen.with(updateId, Number.isFinite(t) ? t : Number.MAX_SAFE_INTEGER)
  if (!Number.isFinite(t) || next.size % SWEEP_EVERY !== 0) return next
  return next.filter((seenAt) => seenAt >= t - DEDUPE_WINDOW_MS)
}

/** Whether a message received at `at` came after the user's block was learned (an unknown time: yes). */
export const writtenAfterBlock = (user: KnownUser, at: string): boolean =>
  user.blockedAt === undefined || !(isoToMs(at) <= isoToMs(user.blockedAt))

/** Whether `updateId` was received within the dedupe window before `at` (recorded time). */
export const isRecentUpdate = (state: BotState, updateId: number, at: string): boolean => {
  const seenAt = state.recentUpdates.get(updateId)
  if (seenAt === undefined) return false
  const t = isoToMs(at)
  return !Number.isFinite(t) || seenAt >= t - DEDUPE_WINDOW_MS
}

/** Applies one event. Total: every event type has a case, and none can fail. */
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
        recentUpdates: remember(state.recentUpdates, event.updateId, event.receivedAt),
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
      const calls = [...(state.openCalls.get(updateId) ?? []), { callId: event.callId, method: event.method, outcome: null }]
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
      const before = state.users.get(event.userId)
      const users = state.users.with(event.userId, {
        firstName: event.firstName,
        lastName: event.lastName,
        username: event.username,
        languageCode: event.languageCode,
        firstSeen: before?.firstSeen ?? event.at,
        lastSeen: event.at,
        blocked: before?.blocked ?? false,
        blockedAt: before?.blockedAt
      })
      return { ...state, users }
    }
    case "UserBlockedBot": {
      const before = state.users.get(event.userId)
      const users = state.users.with(event.userId, {
        firstName: before?.firstName ?? "",
        lastName: before?.lastName,
        username: before?.username,
        languageCode: before?.languageCode,
        firstSeen: before?.firstSeen ?? event.at,
        lastSeen: before?.lastSeen ?? event.at,
        blocked: true,
        blockedAt: event.at
      })
      return { ...state, users }
    }
    case "SessionChanged": {
      const merged = mergePatch(state.sessions[event.key] ?? null, event.patch)
      const sessions = { ...state.sessions }
      if (merged === null) delete sessions[event.key]
      else sessions[event.key] = merged
      return { ...state, sessions }
    }
    case "MessageReceived": {
      // a user who writes to the bot in private after blocking it has unblocked it (writing to a
      // stopped bot restarts it); a message received before the block was learned says nothing
      const from = event.userId
      const known = event.chatType === "private" && from !== undefined && from === event.chatId ? state.users.get(from) : undefined
      if (!known?.blocked || !writtenAfterBlock(known, event.at)) return state
      return { ...state, users: state.users.with(from!, { ...known, blocked: false, blockedAt: undefined }) }
    }
    case "ReplySent":
    case "SnapshotTaken":
    case "LegacyRecordImported":
    case "FleetSettingChanged": // a fleet event: never in a bot's stream
      return state
    default:
      return absurd(event)
  }
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
