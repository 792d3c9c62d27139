import { Data } from "effect"
import { redactString } from "../../logging.js"

/*
 * Every API failure is one JSON shape, `{ "error": { "code", "message", "problems"? } }`, with a
 * stable `code` clients can branch on (docs/api.md lists them). Domain errors of the functions the
 * API shares with the CLI are mapped here by their tag; anything unknown is a 500 whose message
 * says nothing about the internals (the node logs the cause).
 */

export class ApiError extends Data.TaggedError("ApiError")<{
  readonly status: number
  readonly code: string
  readonly detail: string
  readonly problems?: ReadonlyArray<unknown>
}> {
  override get message() {
    return this.detail
  }
}

export const notFound = (what: string) => new ApiError({ status: 404, code: "not_found", detail: `${what} not found` })

const tagOf = (e: unknown): string => (typeof e === "object" && e !== null && "_tag" in e ? String((e as { _tag: unknown })._tag) : "")
const messageOf = (e: unknown): string => redactString(e instanceof Error ? e.message : String(e))

/** [status, code] per domain error tag; the message is the error's own (redacted). */
const MAPPED: Record<string, readonly [number, string]> = {
  UnknownBot: [404, "not_found"],
  DeadLetterNotFound: [404, "not_found"],
  BotExists: [409, "bot_exists"],
  InputRejected: [409, "refused"],
  CommandRefused: [409, "refused"],
  CannotRetry: [409, "cannot_retry"],
  BotHeldByNode: [409, "bot_busy"],
  NodeRefused: [409, "refused"],
  BotConfigRefused: [422, "config_invalid"],
  TokenMalformed: [422, "bot_token_invalid"],
  TokenForAnotherBot: [422, "bot_token_invalid"],
  TelegramRefused: [422, "bot_token_invalid"],
  RateLimited: [503, "unavailable"],
  TelegramUnavailable: [503, "unavailable"],
  OwnerIdInvalid: [400, "invalid_request"],
  NodeDidNotAnswer: [504, "node_timeout"],
  ControlUnavailable: [503, "unavailable"],
  SqlUnavailable: [503, "unavailable"],
  LogUnavailable: [503, "unavailable"],
  KeyStoreUnavailable: [503, "unavailable"],
  FleetStreamBusy: [503, "unavailable"],
  ApiAccessUnavailable: [503, "unavailable"],
  RoleSwitchFailed: [503, "unavailable"],
  SegmentInvalid: [400, "invalid_request"],
  BroadcastNotFound: [404, "not_found"],
  BroadcastRefused: [409, "refused"],
  UserTagInvalid: [400, "invalid_request"],
  BotMessageRefused: [409, "refused"]
}

/** The ApiError for any failure (ApiError itself passes through). */
export const toApiError = (e: unknown): ApiError => {
  if (e instanceof ApiError) return e
  const tag = tagOf(e)
  // an unknown bot or user is a 404, a user id that is not one a 400 (the message says which)
  if (tag === "ForgetRefused") {
    const bad = (e as { reason?: unknown }).reason === "BadUserId"
    return new ApiError({ status: bad ? 400 : 404, code: bad ? "invalid_request" : "not_found", detail: messageOf(e) })
  }
  const mapped = MAPPED[tag]
  if (mapped) {
    const problems = tag === "BotConfigRefused" ? (e as { problems: ReadonlyArray<unknown> }).problems : undefined
    return new ApiError({ status: mapped[0], code: mapped[1], detail: messageOf(e), ...(problems ? { problems } : {}) })
  }
  return new ApiError({ status: 500, code: "internal", detail: "internal error (the node's log has the cause)" })
}

/** The JSON body of an error answer. */
export const errorBody = (e: ApiError) => ({ error: { code: e.code, message: e.detail, ...(e.problems ? { problems: e.problems } : {}) } })
