import { describe, expect, it } from "vitest"
import { commandsFor } from "../../src/cli/main.js"

describe("which command modules a start loads", () => {
  it("loads none for --version, only the named one for a command, all for help or an unknown command", () => {
    expect(commandsFor(["--version"])).toEqual([])
    expect(commandsFor(["-V"])).toEqual([])
    expect(commandsFor(["bots", "list", "--json"])).toEqual(["bots"])
    expect(commandsFor(["run", "--no-sandbox"])).toEqual(["run"])
    const all = commandsFor([])
    expect(all).toContain("bots")
    expect(all).toContain("divergence")
    expect(commandsFor(["--help"])).toEqual(all)
    expect(commandsFor(["help", "bots"])).toEqual(all)
    expect(commandsFor(["bogus"])).toEqual(all)
    expect(commandsFor(["--version", "bots"])).toEqual(all)
  })
})
