import { describe, expect, it } from "vitest"
import { buildProgram, commandsFor, commandSummaries } from "../../src/cli/main.js"

const quietIo = { stdout: () => undefined, stderr: () => undefined, stderrIsTTY: false, env: {} }

describe("which command modules a start loads", () => {
  it("loads only the command named (or asked help for), and none for --version, --help or an unknown command", () => {
    expect(commandsFor(["--version"])).toEqual([])
    expect(commandsFor(["-V"])).toEqual([])
    expect(commandsFor(["bots", "list", "--json"])).toEqual(["bots"])
    expect(commandsFor(["run", "--no-sandbox"])).toEqual(["run"])
    expect(commandsFor(["help", "bots"])).toEqual(["bots"])
    expect(commandsFor([])).toEqual([])
    expect(commandsFor(["--help"])).toEqual([])
    expect(commandsFor(["help"])).toEqual([])
    expect(commandsFor(["bogus"])).toEqual([])
    expect(commandsFor(["--version", "bots"])).toEqual([])
  })

  it("lists every command in --help exactly as the loaded commands describe themselves", async () => {
    const loaded = await buildProgram(quietIo, () => undefined)
    const help = loaded.createHelp()
    expect(commandSummaries()).toEqual(loaded.commands.map((c) => [c.name(), help.subcommandTerm(c), c.description()]))
    const unloaded = await buildProgram(quietIo, () => undefined, [])
    expect(unloaded.helpInformation()).toBe(loaded.helpInformation())
    expect(unloaded.helpInformation()).toContain("rebuild [options] <projection>")
  }, 60_000)
})
