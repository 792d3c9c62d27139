import { Data, Effect } from "effect"
import { request } from "undici"
import { hasUploads, multipartOf } from "./uploads.js"

/**
 * The Bot API client: calls any method by name (telegraf's typings stop at Bot API 7.1; this
 * client does not care), against a configurable API root, and sorts every failure into one of
 * three typed errors so callers can tell at a glance what is safe to retry.
 */

/** Telegram's default API root; `TELEGRAM_API_ROOT` (fleet) or a bot's own setting replaces it. */
export const DEFAULT_API_ROOT = "https://api.telegram.org"

/**
 * Telegram refused the call (4xx other than 429): bad request, chat not found, blocked by the
 * user, revoked token. Telegram did not act and will refuse again: never retried.
 */
export class TelegramRefused extends Data.TaggedError("TelegramRefused")<{
  readonly method: string
  readonly errorCode: number
  readonly description: string
}> {
  readonly retryable = false as const
  override get message() {
    return `${this.method} refused: ${this.errorCode} ${this.description}`
  }
  /** 403 "bot was blocked by the user" (or deactivated/kicked): the chat must not be messaged again. */
  get blockedByUser(): boolean {
    return this.errorCode === 403
  }
}

/** 429: Telegram did not act; retrying after `retryAfterS` seconds is safe. */
export class RateLimited extends Data.TaggedError("RateLimited")<{
  readonly method: string
  readonly retryAfterS: number
  readonly description: string
}> {
  readonly retryable = true as const
  override get message() {
    return `${this.method} rate limited: retry after ${this.retryAfterS}s`
  }
}

/**
 * 5xx, a network failure or an unreadable answer. Whether Telegram acted is UNKNOWN: retrying is
 * safe only for methods that cannot duplicate anything (`isIdempotentMethod`).
 */
export class TelegramUnavailable extends Data.TaggedError("TelegramUnavailable")<{
  readonly method: string
  readonly status: number | null
  readonly reason: string
}> {
  readonly retryable = "onlyIfIdempotent" as const
  override get message() {
    return `${this.method} failed: ${this.status ?? "network"} ${this.reason}`
  }
}

export type BotApiError = TelegramRefused | RateLimited | TelegramUnavailable

/**
 * Methods whose repetition changes nothing a user sees (reads, setters of the same value, chat
 * actions). Anything that sends, forwards or copies is excluded: a retry could post twice.
 */
export const isIdempotentMethod = (method: string): boolean =>
  /^(get|set|delete(Webhook|MyCommands|ChatPhoto|StickerSet)$|logOut$|close$|answerCallbackQuery$|sendChatAction$|editMessage|unpin|pin|leaveChat$|ban|unban|restrict|promote|approve|decline)/.test(method)

export interface BotApiOptions {
  /** API root without a trailing slash; defaults to Telegram's. */
  readonly apiRoot?: string
  /**
   * How long one call may take before it counts as unavailable. getUpdates adds its long-poll
   * `timeout` to this.
   */
  readonly timeoutMs?: number
  readonly fetch?: typeof fetch
}

/** A Telegram answer body, as documented: `{ok, result}` or `{ok:false, error_code, description, parameters}`. */
interface ApiAnswer {
  readonly ok?: boolean
  readonly result?: unknown
  readonly error_code?: number
  readonly description?: string
  readonly parameters?: { readonly retry_after?: number; readonly migrate_to_chat_id?: number }
}

/** Classifies an HTTP status and Telegram body into the result or one typed error. */
export const classify = (method: string, status: number, body: ApiAnswer | null): Effect.Effect<unknown, BotApiError> => {
  if (body?.ok === true && status >= 200 && status < 300) return Effect.succeed(body.result)
  const code = body?.error_code ?? status
  const description = body?.description ?? `HTTP ${status}`
  if (code === 429) {
    return Effect.fail(new RateLimited({ method, retryAfterS: Math.max(0, body?.parameters?.retry_after ?? 1), description }))
  }
  if (code >= 400 && code < 500) return Effect.fail(new TelegramRefused({ method, errorCode: code, description }))
  return Effect.fail(new TelegramUnavailable({ method, status, reason: description }))
}

/**
 * Calls `method` with `params` as JSON, or as multipart/form-data when they hold uploads
 * (uploads.ts: a reference to bytes this thread holds; a file id or URL stays a plain field). The
 * token only ever appears in the request URL: it is absent from every error this returns (errors
 * name the method, never the URL).
 */
export const callBotApi = (
  token: string,
  method: string,
  params: Readonly<Record<string, unknown>> = {},
  options: BotApiOptions = {}
): Effect.Effect<unknown, BotApiError> => {
  const root = (options.apiRoot ?? DEFAULT_API_ROOT).replace(/\/+$/, "")
  const doFetch = options.fetch ?? fetch
  const pollS = method === "getUpdates" && typeof params["timeout"] === "number" ? params["timeout"] : 0
  const timeoutMs = (options.timeoutMs ?? 30_000) + pollS * 1000
  const form = hasUploads(params) ? multipartOf(params) : null
  if (form !== null && !(form instanceof FormData)) {
    // the bytes went with a restart or out of the store: Telegram never saw the call
    return Effect.fail(new TelegramRefused({ method, errorCode: 400, description: `Bad Request: the upload ${form.missing} is no longer held by this node; nothing was sent` }))
  }
  const url = `${root}/bot${token}/${method}`
  const answer = async (status: number, text: string) => {
    let body: ApiAnswer | null = null
    try {
      body = JSON.parse(text) as ApiAnswer
    } catch {
      body = null
    }
    return { status, body }
  }
  return Effect.tryPromise({
    try: async (signal) => {
      if (form === null && options.fetch === undefined) {
        // the common case (JSON, no upload): undici's request, not fetch. fetch builds WHATWG
        // streams, headers and two abort signals per call, and was ~8% of a busy node's CPU
        // (docs/benchmarks.md); request keeps the same pooled keep-alive connections without that
        const res = await request(url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(params),
          signal,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs
        })
        return answer(res.statusCode, await res.body.text())
      }
      const res = await doFetch(url, {
        method: "POST",
        // fetch sets the multipart boundary itself
        ...(form !== null ? { body: form } : { headers: { "content-type": "application/json" }, body: JSON.stringify(params) }),
        signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
      })
      return answer(res.status, await res.text())
    },
    // the error may quote the URL, which holds the token: keep only its kind
    catch: (e) => new TelegramUnavailable({ method, status: null, reason: isTimeout(e) ? "timed out" : "network error" })
  }).pipe(Effect.flatMap(({ status, body }) => classify(method, status, body)))
}

const isTimeout = (e: unknown): boolean => {
  const { name, code } = (e ?? {}) as { name?: unknown; code?: unknown }
  return name === "TimeoutError" || code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT"
}

/**
 * The API root for one bot: its own setting when present, else the fleet's, else Telegram's.
 * A self-hosted telegram-bot-api server or the sandbox stands in for Telegram this way.
 */
export const apiRootFor = (botRoot: string | null | undefined, fleetRoot: string | null | undefined): string =>
  botRoot || fleetRoot || DEFAULT_API_ROOT

/** A Bot API client bound to one bot's token; the token stays inside the closure. */
export interface BotApi {
  readonly call: (method: string, params?: Readonly<Record<string, unknown>>) => Effect.Effect<unknown, BotApiError>
}

export const makeBotApi = (token: string, options: BotApiOptions = {}): BotApi => ({
  call: (method, params) => callBotApi(token, method, params, options)
})
