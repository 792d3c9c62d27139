import { resolve } from "node:path"
import { Schema } from "effect"
import { pathToFileURL } from "node:url"
import { loadModule } from "../../actors/worker/loadModule.js"
import { BotModuleRegistry } from "./registry.js"
import type { BotModule } from "./registry.js"

/** A BOT_MODULES entry could not be loaded or registered: the node refuses to start rather than run bots without their code. */
export class BotModulesFailed extends Error {
  override readonly name = "BotModulesFailed"
  constructor(
    readonly module: string,
    readonly reason: string
  ) {
    super(`cannot load bot module ${module} (BOT_MODULES): ${reason}\nIt must be an ES module exporting botModules: { <kind name>: (config) => Composer } (and, optionally, botConfigSchemas: { <kind name>: an effect/Schema of its config } and botMessageSchemas: { <kind name>: { <message name>: an effect/Schema of its payload } }).`)
  }
}

/** A path (relative to the working directory) or a file: URL, as an importable specifier. */
export const moduleUrl = (m: string) => (m.startsWith("file:") ? m : pathToFileURL(resolve(m)).href)

/**
 * The fleet's bot kinds: the built-in one plus every kind the owners' modules export. Each module
 * exports `botModules`, an object of kind name → `(config) => Composer<BotContext>`, and may export
 * `botConfigSchemas`, kind name → an effect/Schema of that kind's configuration: configuration
 * changes of its bots are then checked like the built-in kind's; and `botMessageSchemas`, kind name →
 * { message name → an effect/Schema of its payload }: the typed messages its bots take from the
 * owner's other bots (`ctx.fleet.send`, docs/actors.md). Loaded the
 * same way on the main thread, in every worker thread and by replay, so a bot runs and replays
 * with the same code.
 */
export const loadBotModules = async (modules: ReadonlyArray<string>): Promise<BotModuleRegistry> => {
  const registry = new BotModuleRegistry()
  for (const m of modules) {
    let loaded: { botModules?: unknown; botConfigSchemas?: unknown; botMessageSchemas?: unknown }
    try {
      loaded = await loadModule<{ botModules?: unknown; botConfigSchemas?: unknown; botMessageSchemas?: unknown }>(moduleUrl(m))
    } catch (e) {
      throw new BotModulesFailed(m, e instanceof Error ? e.message : String(e))
    }
    const kinds = loaded.botModules
    if (typeof kinds !== "object" || kinds === null) throw new BotModulesFailed(m, "it does not export a botModules object")
    for (const [name, module] of Object.entries(kinds)) {
      if (typeof module !== "function") throw new BotModulesFailed(m, `botModules.${name} is not a function (config) => Composer`)
      try {
        registry.register(name, module as BotModule)
      } catch (e) {
        throw new BotModulesFailed(m, e instanceof Error ? e.message : String(e))
      }
    }
    registerMessageSchemas(registry, m, loaded.botMessageSchemas)
    const schemas = loaded.botConfigSchemas
    if (schemas === undefined) continue
    if (typeof schemas !== "object" || schemas === null) throw new BotModulesFailed(m, "botConfigSchemas is not an object of kind name → Schema")
    for (const [name, schema] of Object.entries(schemas)) {
      if (!Schema.isSchema(schema)) throw new BotModulesFailed(m, `botConfigSchemas.${name} is not an effect/Schema`)
      try {
        registry.registerConfigSchema(name, schema as Schema.Schema.AnyNoContext)
      } catch (e) {
        throw new BotModulesFailed(m, e instanceof Error ? e.message : String(e))
      }
    }
  }
  return registry
}

const registerMessageSchemas = (registry: BotModuleRegistry, m: string, declared: unknown): void => {
  if (declared === undefined) return
  if (typeof declared !== "object" || declared === null) throw new BotModulesFailed(m, "botMessageSchemas is not an object of kind name → { message name → Schema }")
  for (const [kind, messages] of Object.entries(declared)) {
    if (typeof messages !== "object" || messages === null) throw new BotModulesFailed(m, `botMessageSchemas.${kind} is not an object of message name → Schema`)
    for (const [name, schema] of Object.entries(messages)) {
      if (!Schema.isSchema(schema)) throw new BotModulesFailed(m, `botMessageSchemas.${kind}.${name} is not an effect/Schema`)
    }
    try {
      registry.registerMessageSchemas(kind, messages as Record<string, Schema.Schema.AnyNoContext>)
    } catch (e) {
      throw new BotModulesFailed(m, e instanceof Error ? e.message : String(e))
    }
  }
}
