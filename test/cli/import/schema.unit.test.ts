import { describe, expect, it } from "vitest"
import schema from "../../../schemas/legacy-bot.schema.json" with { type: "json" }
import { GENERIC_KEYS, genericFields } from "../../../src/cli/import/genericLayout.pure.js"

describe("schemas/legacy-bot.schema.json", () => {
  it("documents exactly the keys, fields and required fields the importer checks", () => {
    expect(Object.keys(schema.properties).sort()).toEqual([...GENERIC_KEYS].sort())
    for (const list of ["users", "chats", "messages"] as const) {
      const items = schema.properties[list].items as { required: Array<string>; properties: Record<string, unknown> }
      const fields = genericFields[list]
      expect(Object.keys(items.properties).sort()).toEqual(Object.keys(fields).sort())
      expect([...items.required].sort()).toEqual(Object.entries(fields).filter(([, f]) => f.required).map(([k]) => k).sort())
    }
  })
})
