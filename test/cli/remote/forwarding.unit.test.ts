import { describe, expect, it } from "vitest"
import { join } from "node:path"
import { forwardingOf } from "../../../src/cli/remote/forwarding.pure.js"
import { withAbsoluteFiles } from "../../../src/cli/remote/remote.js"

/* Which command lines a CLI beside a running embedded node sends to it, refuses, or runs itself. */

describe("forwardingOf", () => {
  it("sends the data commands to the node", () => {
    for (const argv of [
      ["status", "--json"],
      ["bots", "list"],
      ["bots", "add", "x", "--owner", "o"],
      ["bots", "configure", "x", "--show"],
      ["bots", "list", "--bogus"],
      ["inspect", "demo-sunny", "--at", "3"],
      ["tail", "demo-sunny"],
      ["tokens", "create", "--admin"],
      ["owners", "list"],
      ["audit", "verify"],
      ["dlq", "list"],
      ["dlq", "retry", "0", "1-0"],
      ["broadcast", "create", "demo-sunny", "--segment", "all", "--text", "hi"],
      ["users", "tag", "demo-sunny", "1", "vip"]
    ]) {
      expect(forwardingOf(argv), argv.join(" ")).toEqual({ _tag: "Forward" })
    }
  })

  it("runs here what reads no data: help, version, run, config, a bare group, an unknown command", () => {
    for (const argv of [[], ["--version"], ["--help"], ["bots", "add", "--help"], ["status", "-h"], ["run"], ["config"], ["help", "bots"], ["dlq"], ["frobnicate"]]) {
      expect(forwardingOf(argv), argv.join(" ")).toEqual({ _tag: "Local" })
    }
  })

  it("refuses what needs the folder to itself, saying why", () => {
    for (const [argv, command] of [
      [["import", "./old-bot"], "import"],
      [["restore", "b1"], "restore"],
      [["backup", "now"], "backup"],
      [["migrate"], "migrate"],
      [["rebuild", "--all"], "rebuild"],
      [["events", "x", "--export", "f"], "events"],
      [["replay", "x"], "replay"],
      [["dlq", "list", "--bot", "x"], "dlq list"]
    ] as const) {
      const f = forwardingOf(argv)
      expect(f._tag, argv.join(" ")).toBe("Refuse")
      if (f._tag === "Refuse") {
        expect(f.command).toBe(command)
        expect(f.why.length).toBeGreaterThan(10)
      }
    }
  })
})

describe("withAbsoluteFiles", () => {
  it("makes file arguments absolute (the node has another working directory), leaving the rest", () => {
    const cwd = process.cwd()
    expect(withAbsoluteFiles(["bots", "configure", "b", "--file", "p.json", "--json"])).toEqual(["bots", "configure", "b", "--file", join(cwd, "p.json"), "--json"])
    expect(withAbsoluteFiles(["bots", "configure", "b", "--file=/abs/p.json"])).toEqual(["bots", "configure", "b", "--file=/abs/p.json"])
    expect(withAbsoluteFiles(["bots", "configure", "b", "--file=p.json"])).toEqual(["bots", "configure", "b", `--file=${join(cwd, "p.json")}`])
    expect(withAbsoluteFiles(["status", "--json"])).toEqual(["status", "--json"])
  })
})
