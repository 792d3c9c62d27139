import type { Schema } from "effect"
import type { Composer } from "telegraf"
import type { BotState } from "../../actors/decider/state.js"
import type { UpdateHandler } from "../../actors/decider/updateHandler.js"
import { builtinComposer } from "./builtin.js"
import { BuiltinConfigSchema } from "./configSchema.pure.js"
import { telegrafHandler } from "./telegrafHandler.js"
import { withHandoffGreeting } from "./handoffGreeting.js"
import { withBroadcasts } from "./broadcastSend.js"
import { withUserTags } from "./userTagging.js"
import { withBotMessages } from "./botMessages.js"
import type { MessageSchemas } from "./botMessages.js"
import { declaredMessagesOf, payloadSchemaOf } from "./botMessagesSchema.pure.js"
import type { BotContext } from "./telegrafHandler.js"

/**
 * Bot kinds by name. `builtin` is the no-code kind; owners who write code register their own
 * Composer module under a name (`registerBotModule`), and a bot whose `kind` is that name runs it
 * with the same guarantees (recorded calls, session patches, replay).
 */
export type BotModule = (config: unknown) => Composer<BotContext>

export class BotModuleRegistry {
  private readonly modules = new Map<string, BotModule>([["builtin", builtinComposer]])
  private readonly schemas = new Map<string, Schema.Schema.AnyNoContext>([["builtin", BuiltinConfigSchema]])
  private readonly messageSchemas = new Map<string, MessageSchemas>()
  /** Handlers cached per configuration object: a config change (a new state object) builds a new one. */
  private readonly cache = new WeakMap<object, Map<string, UpdateHandler>>()

  register(name: string, module: BotModule): void {
    if (!/^[a-z][a-z0-9_-]{0,63}$/.test(name)) throw new Error(`bot module name ${JSON.stringify(name)} must be lower-case letters, digits, _ or -`)
    if (this.modules.has(name)) throw new Error(`a bot module named ${name} is already registered`)
    this.modules.set(name, module)
  }

  /** Declares the configuration schema of a registered kind (configuration changes are checked against it). */
  registerConfigSchema(name: string, schema: Schema.Schema.AnyNoContext): void {
    if (!this.modules.has(name)) throw new Error(`botConfigSchemas.${name}: no bot module named ${name} is exported next to it`)
    this.schemas.set(name, schema)
  }

  /**
   * Declares the typed messages a registered kind takes from its owner's other bots: message name
   * → an effect/Schema of its payload (botMessage.ts). A message of another name is refused.
   */
  registerMessageSchemas(name: string, schemas: Readonly<Record<string, Schema.Schema.AnyNoContext>>): void {
    if (!this.modules.has(name)) throw new Error(`botMessageSchemas.${name}: no bot module named ${name} is exported next to it`)
    this.messageSchemas.set(name, new Map(Object.entries(schemas)))
  }

  /** The messages a bot takes: its kind's declared schemas, and those its config declares (`messages`, the built-in way). */
  messageSchemasOf(kind: string, config: unknown): MessageSchemas {
    const declared = [...declaredMessagesOf(config)].map(([n, d]) => [n, payloadSchemaOf(d)] as const)
    return new Map([...(this.messageSchemas.get(kind) ?? []), ...declared])
  }

  /** The kind's configuration schema; undefined when it declares none (any JSON object goes). */
  configSchema(name: string): Schema.Schema.AnyNoContext | undefined {
    return this.schemas.get(name)
  }

  has(name: string): boolean {
    return this.modules.has(name)
  }

  names(): ReadonlyArray<string> {
    return [...this.modules.keys()]
  }

  /**
   * The handler for a bot's state: its kind's module built with its configuration. An unknown kind
   * throws, which the actor records as a failed update (the bot goes on with the next one).
   */
  handlerFor = (state: BotState): UpdateHandler => {
    const kind = state.kind ?? "builtin"
    let byKind = this.cache.get(state.config)
    const hit = byKind?.get(kind)
    if (hit) return hit
    const module = this.modules.get(kind)
    if (!module) throw new Error(`no bot module named ${kind} is registered on this node`)
    // handoffs and typed messages from the owner's other bots, broadcast messages and owners' tag requests are handled in front of every kind
    const messages = this.messageSchemasOf(kind, state.config)
    const handler = withUserTags(withBroadcasts(withBotMessages(withHandoffGreeting(telegrafHandler(module(state.config))), () => messages)))
    if (!byKind) {
      byKind = new Map()
      this.cache.set(state.config, byKind)
    }
    byKind.set(kind, handler)
    return handler
  }
}
