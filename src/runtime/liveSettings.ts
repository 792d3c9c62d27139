import { Data, Effect } from "effect"
import { describeConfig, reconfigure, settingsByName, sourceOf } from "../config.js"
import type { BotfleetConfig, SettingSource } from "../config.js"
import { Redacted } from "effect"

/*
 * Settings that change on a running node. The mechanism is generic: a setting opts in with
 * `live: true` in the settings table (config.ts); a change is parsed and validated exactly as at
 * start-up (the same parsers and cross-checks, over the same environment and file), and every
 * subscriber gets the new configuration. Whatever reads a live setting either subscribes (the
 * logger, the supervisor, the Bot API senders) or reads `current()` each time it needs the value.
 * A live value lasts until the node stops: the environment and BOTFLEET_CONFIG stay the one
 * durable source (docs/operations-config.md).
 */

/** One setting as a node has it: the value in effect (as `botfleet config` prints it) and where it comes from. */
export interface SettingValue {
  readonly name: string
  readonly value: string
  readonly source: SettingSource
  /** Whether it can change without a restart. */
  readonly live: boolean
}

/** What one `set` changed on a node. */
export interface SettingChange {
  readonly name: string
  readonly old: string
  readonly value: string
  readonly source: SettingSource
}

/** A live change refused: an unknown setting, one that needs a restart, or a value its setting does not accept. Nothing changed. */
export class SettingRefused extends Data.TaggedError("SettingRefused")<{
  readonly name: string
  readonly reason: "unknown" | "needs-restart" | "invalid"
  readonly detail: string
}> {
  override get message() {
    switch (this.reason) {
      case "unknown":
        return `${this.name} is not a botfleet setting (botfleet config lists them)`
      case "needs-restart":
        return `${this.name} cannot change on a running node: set it in the environment or the BOTFLEET_CONFIG file and restart the nodes`
      case "invalid":
        return `${this.name}: ${this.detail}`
    }
  }
}

const shown = (c: BotfleetConfig, name: string): string => String(describeConfig(c)[name] ?? "")

/**
 * The configuration with `name` set to `raw` (null or "": back to the environment, file or
 * default value), validated as at start-up; refused when the setting is unknown, not live, or the
 * value is not accepted. Pure over its inputs: the CLI checks a change with it before asking any
 * node, and each node checks it again against its own configuration.
 */
export const checkLiveSetting = (
  config: BotfleetConfig,
  liveValues: Readonly<Record<string, string>>,
  name: string,
  raw: string | null
): Effect.Effect<{ readonly config: BotfleetConfig; readonly liveValues: Readonly<Record<string, string>> }, SettingRefused> =>
  Effect.gen(function* () {
    const setting = settingsByName.get(name)
    if (setting === undefined) return yield* new SettingRefused({ name, reason: "unknown", detail: "" })
    if (setting.live !== true) return yield* new SettingRefused({ name, reason: "needs-restart", detail: "" })
    const next: Record<string, string> = { ...liveValues }
    if (raw === null || raw.trim() === "") delete next[name]
    else next[name] = raw.trim()
    const reconfigured = yield* reconfigure(config, next).pipe(
      Effect.mapError((e) => new SettingRefused({ name, reason: "invalid", detail: e.problems.map((p) => (p.variable === name ? p.problem : `${p.variable}: ${p.problem}`)).join("; ") }))
    )
    return { config: reconfigured, liveValues: next }
  })

export interface LiveSettings {
  /** The configuration in effect now. */
  readonly current: () => BotfleetConfig
  /** Every setting's value in effect and its source. */
  readonly describe: () => ReadonlyArray<SettingValue>
  /** Changes one live setting (null: back to its start value) and tells every subscriber. */
  readonly set: (name: string, raw: string | null) => Effect.Effect<SettingChange, SettingRefused>
  /** Called with the new configuration after every change; returns how to unsubscribe. */
  readonly subscribe: (f: (config: BotfleetConfig) => void) => () => void
}

/** A node's live settings, starting from the configuration it was started with. */
export const makeLiveSettings = (start: BotfleetConfig): LiveSettings => {
  let config = start
  let liveValues: Readonly<Record<string, string>> = {}
  const subscribers = new Set<(c: BotfleetConfig) => void>()
  const origin = start.origin ? Redacted.value(start.origin) : undefined
  const sourceOfName = (name: string): SettingSource => (name in liveValues ? "live" : sourceOf(origin, name))
  return {
    current: () => config,
    describe: () =>
      Object.entries(describeConfig(config)).map(([name, value]) => ({
        name,
        value: String(value),
        // the mode follows from DATABASE_URL (and REDIS_URL)
        source: sourceOfName(name === "mode" ? "DATABASE_URL" : name),
        live: settingsByName.get(name)?.live === true
      })),
    set: (name, raw) =>
      Effect.gen(function* () {
        const old = shown(config, name)
        const next = yield* checkLiveSetting(config, liveValues, name, raw)
        config = next.config
        liveValues = next.liveValues
        for (const f of subscribers) f(config)
        return { name, old, value: shown(config, name), source: sourceOfName(name) }
      }),
    subscribe: (f) => {
      subscribers.add(f)
      return () => void subscribers.delete(f)
    }
  }
}
