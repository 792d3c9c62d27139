import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { checkBotConfig } from "../../../src/telegram/bots/configCheck.pure.js"
import { BuiltinConfigSchema } from "../../../src/telegram/bots/configSchema.pure.js"
import { BotModulesFailed, loadBotModules } from "../../../src/telegram/bots/moduleLoader.js"

/* An owner's BOT_MODULES module loaded from disk, with the config schema it exports. */

describe("owners' modules declare schemas", () => {
  it("botConfigSchemas of a BOT_MODULES module are registered with their kind", async () => {
    const registry = await loadBotModules([new URL("../../runtime/fixtures/ownerBots.ts", import.meta.url).href])
    const schema = registry.configSchema("counter")
    expect(schema).toBeDefined()
    expect(Either.isRight(checkBotConfig({ botId: "c", kind: "counter", current: {}, patch: { prefix: "n" }, schema }))).toBe(true)
    const refused = checkBotConfig({ botId: "c", kind: "counter", current: {}, patch: { prefix: 3 }, schema })
    expect(Either.isLeft(refused) && refused.left.message).toContain("prefix: Expected string, actual 3")
    expect(registry.configSchema("builtin")).toBe(BuiltinConfigSchema)
  })

  it("a schema that is not an effect/Schema, or for a kind not exported, stops the load", async () => {
    // inside the repository, so the modules resolve "effect" from its node_modules
    const dir = await mkdtemp(join(fileURLToPath(new URL("../../../", import.meta.url)), ".bf-modules-"))
    try {
      const module = async (name: string, text: string) => {
        await writeFile(join(dir, name), text)
        return join(dir, name)
      }
      const notSchema = await module("a.mjs", "export const botModules = { k: () => null }; export const botConfigSchemas = { k: 42 }")
      await expect(loadBotModules([notSchema])).rejects.toThrow(BotModulesFailed)
      await expect(loadBotModules([notSchema])).rejects.toThrow("botConfigSchemas.k is not an effect/Schema")
      const otherKind = await module("b.mjs", 'import { Schema } from "effect"; export const botModules = { k: () => null }; export const botConfigSchemas = { other: Schema.String }')
      await expect(loadBotModules([otherKind])).rejects.toThrow("botConfigSchemas.other: no bot module named other is exported next to it")
      // typed messages a kind takes: declared schemas are registered, anything else stops the load
      const messages = await module("c.mjs", 'import { Schema } from "effect"; export const botModules = { k: () => null }; export const botMessageSchemas = { k: { "lead.scored": Schema.Struct({ score: Schema.Number }) } }')
      expect([...(await loadBotModules([messages])).messageSchemasOf("k", {}).keys()]).toEqual(["lead.scored"])
      const badMessage = await module("d.mjs", "export const botModules = { k: () => null }; export const botMessageSchemas = { k: { ping: 1 } }")
      await expect(loadBotModules([badMessage])).rejects.toThrow("botMessageSchemas.k.ping is not an effect/Schema")
      const messageOtherKind = await module("e.mjs", 'import { Schema } from "effect"; export const botModules = { k: () => null }; export const botMessageSchemas = { z: { ping: Schema.Null } }')
      await expect(loadBotModules([messageOtherKind])).rejects.toThrow("botMessageSchemas.z: no bot module named z is exported next to it")
      await expect(loadBotModules([await module("f.mjs", "export const botModules = { k: () => null }; export const botMessageSchemas = 3")])).rejects.toThrow("botMessageSchemas is not an object")
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
