/*
 * The bot kind of each bot id, for the `kind` label of /metrics: learnt when this node loads a
 * bot's profile and from the `bots` projection and `BotRegistered` events it projects. Kinds are
 * the fleet's configured ones (the built-in kind and BOT_MODULES), a short list; past MAX_KINDS
 * distinct values the rest count as `other`, so a label never grows with the fleet.
 */

/** Bots remembered at most (the least recently learnt are forgotten first). */
const MAX_BOTS = 100_000
/** Distinct kind label values at most. */
export const MAX_KINDS = 50

const byBot = new Map<string, string>()
const kinds = new Set<string>()

/** The kind as a label value: one of the first MAX_KINDS kinds seen, else `other`. */
const label = (kind: string): string => {
  if (kinds.has(kind)) return kind
  if (kinds.size >= MAX_KINDS) return "other"
  kinds.add(kind)
  return kind
}

export const learnBotKind = (botId: string, kind: string): void => {
  const l = label(kind)
  if (byBot.get(botId) === l) return
  byBot.delete(botId)
  byBot.set(botId, l)
  if (byBot.size > MAX_BOTS) byBot.delete(byBot.keys().next().value!)
}

/** The bot's kind label; `unknown` until this node has learnt it. */
export const kindOf = (botId: string): string => byBot.get(botId) ?? "unknown"
