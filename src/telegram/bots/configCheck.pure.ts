import { Data, Either, ParseResult, Schema } from "effect"
import { mergeObject } from "../../actors/decider/mergePatch.js"
import type { JsonObject } from "../../actors/decider/mergePatch.js"

/**
 * One check for every bot configuration change, whoever makes it (`bots configure`, the REST
 * API): the patch is applied to the current configuration and the result must decode with the
 * bot kind's schema. Pure: the caller brings the current config and the kind's schema.
 */

/** One reason a configuration is refused: where (`personality.tone`, `keywords[0].match`) and why. */
export interface ConfigProblem {
  readonly path: string
  readonly reason: string
}

/** The configuration a change would give does not fit the bot kind's schema: nothing was recorded. */
export class BotConfigRefused extends Data.TaggedError("BotConfigRefused")<{
  readonly botId: string
  readonly kind: string
  readonly problems: ReadonlyArray<ConfigProblem>
}> {
  override get message() {
    return [
      `bot ${this.botId}: the configuration is refused (kind ${this.kind}); nothing was recorded:`,
      ...this.problems.map((p) => `  ${p.path === "" ? "(the patch)" : p.path}: ${p.reason}`),
      "Fix these and run the command again (botfleet bots configure <bot> --show prints the configuration in effect)."
    ].join("\n")
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

const pathText = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>((s, k) => (typeof k === "number" ? `${s}[${k}]` : s === "" ? String(k) : `${s}.${String(k)}`), "")

const EXPECTED = /^Expected (.+), actual (.+)$/s

/**
 * A schema's failures as path + reason, all of them, one line per path: the alternatives of a
 * union (`"plain" | "friendly" | ...`) are merged into one "Expected" reason.
 */
export const problemsOf = (schema: Schema.Schema.AnyNoContext, value: unknown): ReadonlyArray<ConfigProblem> => {
  const r = Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })(value)
  if (Either.isRight(r)) return []
  const byPath = new Map<string, Array<string>>()
  for (const i of ParseResult.ArrayFormatter.formatErrorSync(r.left)) {
    const path = pathText(i.path)
    const reason = i._tag === "Unexpected" ? "is not a setting of this bot kind (a typo?)" : i.message
    byPath.set(path, [...(byPath.get(path) ?? []), reason])
  }
  const problems: Array<ConfigProblem> = []
  for (const [path, reasons] of byPath) {
    const expected = reasons.map((x) => EXPECTED.exec(x))
    if (reasons.length > 1 && expected.every((m) => m !== null && m[2] === expected[0]![2])) {
      problems.push({ path, reason: `Expected ${expected.map((m) => m![1]).join(" | ")}, actual ${expected[0]![2]}` })
    } else for (const reason of new Set(reasons)) problems.push({ path, reason })
  }
  return problems
}

/**
 * The configuration `patch` (a JSON merge patch) gives when applied to `current`, if it fits
 * `schema` (none: the kind declares no schema, any object goes); otherwise every problem with its
 * path and reason.
 */
export const checkBotConfig = (o: {
  readonly botId: string
  readonly kind: string
  readonly current: unknown
  readonly patch: unknown
  readonly schema: Schema.Schema.AnyNoContext | undefined
}): Either.Either<JsonObject, BotConfigRefused> => {
  if (!isObject(o.patch)) return Either.left(new BotConfigRefused({ botId: o.botId, kind: o.kind, problems: [{ path: "", reason: "a config patch must be a JSON object" }] }))
  const next = mergeObject(isObject(o.current) ? (o.current as JsonObject) : {}, o.patch)
  if (o.schema === undefined) return Either.right(next)
  const problems = problemsOf(o.schema, next)
  return problems.length === 0 ? Either.right(next) : Either.left(new BotConfigRefused({ botId: o.botId, kind: o.kind, problems }))
}
