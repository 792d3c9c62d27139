import { Effect, Either } from "effect"
import type { EventLogService } from "../../events/eventLog.js"
import { checkBotConfig } from "../../telegram/bots/configCheck.pure.js"
import { loadBotModules, moduleUrl } from "../../telegram/bots/moduleLoader.js"
import { parseBuiltinConfig } from "../../telegram/bots/personality.pure.js"
import { UsageError } from "../runtime.js"
import { foldBot } from "./botRows.js"
import { UnknownBot } from "./lifecycle.js"

/*
 * `bots configure`: a patch built from `--set a.b=c` (nested paths) or a file, checked against the
 * bot kind's schema before anything is sent or recorded (checkBotConfig, the same function the API
 * calls), and `--show` for the configuration in effect.
 */

/**
 * Builds a JSON merge patch from `--set path=value` arguments: `a.b.c=v` sets the nested key
 * (`{"a":{"b":{"c":v}}}`), the value is JSON when it parses (else the string), `null` deletes.
 * The same path twice, or a path inside another one's value, is a usage error.
 */
export const parseSets = (sets: ReadonlyArray<string>): Effect.Effect<Record<string, unknown>, UsageError> =>
  Effect.gen(function* () {
    const patch: Record<string, unknown> = {}
    const leaves = new Set<string>()
    for (const s of sets) {
      const eq = s.indexOf("=")
      if (eq <= 0) return yield* new UsageError({ detail: `--set ${JSON.stringify(s)}: expected key=value (a.b=value for a nested key)` })
      const path = s.slice(0, eq).split(".")
      if (path.some((k) => k.trim() === "")) return yield* new UsageError({ detail: `--set ${JSON.stringify(s)}: a key path is names joined by dots (personality.tone=pirate)` })
      const raw = s.slice(eq + 1)
      let value: unknown = raw
      try {
        value = JSON.parse(raw)
      } catch {
        // not JSON: the plain string
      }
      const key = path.join(".")
      for (const other of leaves) {
        if (other === key || other.startsWith(`${key}.`) || key.startsWith(`${other}.`)) {
          return yield* new UsageError({ detail: `--set ${key} conflicts with --set ${other}: set each key once` })
        }
      }
      leaves.add(key)
      let node = patch
      for (const k of path.slice(0, -1)) {
        const next = node[k]
        node = (typeof next === "object" && next !== null ? next : (node[k] = {})) as Record<string, unknown>
      }
      node[path[path.length - 1]!] = value
    }
    return patch
  })

/** The bot kinds this CLI knows (built-in + BOT_MODULES), for their config schemas. */
const registryFor = (botModules: ReadonlyArray<string>) =>
  Effect.tryPromise({ try: () => loadBotModules(botModules.map(moduleUrl)), catch: (e) => new UsageError({ detail: e instanceof Error ? e.message : String(e) }) })

/**
 * Checks that `patch` applied to the bot's configuration fits its kind's schema; fails with
 * BotConfigRefused (every problem with its path) or UnknownBot, having changed nothing.
 */
export const checkPatch = (o: { readonly log: EventLogService; readonly botId: string; readonly patch: unknown; readonly botModules: ReadonlyArray<string> }) =>
  Effect.gen(function* () {
    const { state, version } = yield* foldBot(o.log, o.botId)
    if (version === 0) return yield* new UnknownBot({ botId: o.botId })
    const kind = state.kind ?? "builtin"
    const registry = yield* registryFor(o.botModules)
    const checked = checkBotConfig({ botId: o.botId, kind, current: state.config, patch: o.patch, schema: registry.configSchema(kind) })
    if (Either.isLeft(checked)) return yield* checked.left
    return checked.right
  })

/**
 * The configuration in effect: as recorded (every patch applied), and as the bot runs it (the
 * built-in kind fills in its defaults).
 */
export const showConfig = (o: { readonly log: EventLogService; readonly botId: string; readonly botModules: ReadonlyArray<string> }) =>
  Effect.gen(function* () {
    const { state, version } = yield* foldBot(o.log, o.botId)
    if (version === 0) return yield* new UnknownBot({ botId: o.botId })
    const kind = state.kind ?? "builtin"
    const registry = yield* registryFor(o.botModules)
    return {
      botId: o.botId,
      kind,
      version,
      /** Whether the kind declares a schema (changes are checked against it). */
      checked: registry.configSchema(kind) !== undefined,
      config: state.config,
      effective: kind === "builtin" ? parseBuiltinConfig(state.config) : state.config
    }
  })
