import { Effect, Either, Redacted } from "effect"
import type { CallExecutor } from "../actors/actor.js"
import type { BotState } from "../actors/decider/state.js"
import { recordCall } from "../metrics/threadStats.js"
import { makeBotApi } from "./botApi.js"
import type { BotApi } from "./botApi.js"
import { executeIntent } from "./recordedCalls.js"
import type { Sender } from "./sender.js"
import type { TokenVault } from "./tokenVault.js"

export interface CallExecutorOptions {
  readonly vault: TokenVault
  readonly sender: Sender
  /** Bot API root for a bot of this mode (sandbox bots talk to the local sandbox). */
  readonly apiRootFor: (mode: NonNullable<BotState["mode"]>) => string
  /** The clock results are recorded at (results are inputs, recorded as they happen). */
  readonly now?: () => string
}

/**
 * The actor's Bot API port on a node (or a worker thread): opens each bot's token from its state
 * (ciphertext only is in the state; the clear token lives only in the client's closure), keeps a
 * client per bot, and sends every intent through the sender (limits, 429s, no duplicating
 * retries). A bot whose token cannot be opened gets a refusal recorded: nothing was sent.
 */
const MAX_CLIENTS = 1000

export const makeCallExecutor = (o: CallExecutorOptions): CallExecutor => {
  const clients = new Map<string, { readonly key: string; readonly api: BotApi }>()
  const now = o.now ?? (() => new Date().toISOString())
  const clientFor = (botId: string, state: BotState): Either.Either<BotApi, string> => {
    if (state.tokenCiphertext === null) return Either.left("the bot has no token")
    const mode = state.mode ?? "webhook"
    const key = `${mode}/${state.tokenCiphertext}`
    const known = clients.get(botId)
    if (known?.key === key) {
      // most recently used last: the oldest entry is the one dropped when the cache is full
      clients.delete(botId)
      clients.set(botId, known)
      return Either.right(known.api)
    }
    const token = Effect.runSync(Effect.either(o.vault.open(botId, state.tokenCiphertext)))
    if (Either.isLeft(token)) return Either.left(token.left.message)
    const api = makeBotApi(Redacted.value(token.right), { apiRoot: o.apiRootFor(mode) })
    clients.set(botId, { key, api })
    // bounded: a thread keeps clear tokens (in its clients' closures) only of bots it ran lately
    if (clients.size > MAX_CLIENTS) clients.delete(clients.keys().next().value!)
    return Either.right(api)
  }
  return async (botId, state, intent) => {
    const api = clientFor(botId, state)
    if (Either.isLeft(api)) {
      recordCall(intent.method, "not_sent")
      return [{ _tag: "BotApiCallFailed", callId: intent.callId, errorCode: 0, description: `nothing was sent: ${api.left}` }]
    }
    return executeIntent(intent, { botKey: botId, sender: o.sender, call: api.right.call, now })
  }
}
