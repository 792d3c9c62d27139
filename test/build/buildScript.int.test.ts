import { existsSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { makeCheckout } from "./checkout.js"
import type { Checkout } from "./checkout.js"

/*
 * scripts/build.js (`npm run build`, and npm's prepare step with --prepare) in a throwaway
 * checkout with a two-file src/: what it compiles and copies, the stamp bin/entry.js trusts, and
 * what it does when it cannot build.
 */

const buildConfig = JSON.stringify({
  compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, skipLibCheck: true, types: [], rootDir: "src", outDir: "dist" },
  include: ["src"]
})

const sources = async (c: Checkout, main: string) => {
  await c.write("tsconfig.json", "{}\n")
  await c.write("tsconfig.build.json", buildConfig)
  await c.write("src/cli/main.ts", main)
  await c.write("src/api/dashboard/page.html", "<p>fleet</p>\n")
  await c.write("src/api/dashboard/page.js", "document.title = 'fleet'\n")
}

describe("scripts/build.js", () => {
  let checkout: Checkout | undefined
  afterEach(async () => {
    await checkout?.remove()
    checkout = undefined
  })

  it("compiles src/, copies every other file of src/ beside the output, and stamps the build with the time it began", async () => {
    checkout = await makeCheckout()
    await sources(checkout, "export const main = async (argv: ReadonlyArray<string>): Promise<number> => argv.length\n")
    const before = Date.now()
    const r = await checkout.node(["scripts/build.js"])
    expect(r.code).toBe(0)
    expect(r.err).toContain("dist/ is current (2 asset files copied)")
    expect(readFileSync(join(checkout.dir, "dist/cli/main.js"), "utf8")).toContain("export const main")
    expect(readFileSync(join(checkout.dir, "dist/api/dashboard/page.html"), "utf8")).toBe("<p>fleet</p>\n")
    expect(existsSync(join(checkout.dir, "dist/api/dashboard/page.js"))).toBe(true)
    const stamp = statSync(join(checkout.dir, "dist/.build-stamp")).mtimeMs
    // a source saved while tsc ran would be newer than the stamp (within the file system's second)
    expect(stamp).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 - 1000)
    expect(stamp).toBeLessThanOrEqual(statSync(join(checkout.dir, "dist/cli/main.js")).mtimeMs)
    // and bin/botfleet.js now runs the build
    expect((await checkout.node(["bin/botfleet.js", "a", "b"])).code).toBe(2)
  })

  it("compiles imports of effect's index to imports of its modules, the same values, so a start loads only the modules it uses", async () => {
    checkout = await makeCheckout()
    await sources(
      checkout,
      [
        'import { Effect, Option as O, pipe } from "effect"',
        'import { Schema } from "effect"',
        "const Port = Schema.NumberFromString.pipe(Schema.int())",
        "export const main = async (argv: ReadonlyArray<string>): Promise<number> =>",
        "  Effect.runSync(pipe(Schema.decodeUnknown(Port)(argv[0]), Effect.map((n) => O.getOrElse(O.some(n), () => 0)), Effect.orElseSucceed(() => 7)))",
        ""
      ].join("\n")
    )
    expect((await checkout.node(["scripts/build.js"])).code).toBe(0)
    const compiled = readFileSync(join(checkout.dir, "dist/cli/main.js"), "utf8")
    expect(compiled).not.toContain('from "effect"')
    expect(compiled).toContain('import * as Effect from "effect/Effect"; import * as O from "effect/Option"; import { pipe } from "effect/Function";')
    expect(compiled).toContain('import * as Schema from "effect/Schema";')
    // the source map still points at the same lines: the imports stay on theirs
    expect(compiled.split("\n").findIndex((l) => l.startsWith("const Port"))).toBe(2)
    // and it runs: exit code 42 from a decoded "42", 7 from a refused "x"
    expect((await checkout.node(["bin/botfleet.js", "42"])).code).toBe(42)
    expect((await checkout.node(["bin/botfleet.js", "x"])).code).toBe(7)
    // a second (incremental) build leaves them so
    expect((await checkout.node(["scripts/build.js"])).code).toBe(0)
    expect(readFileSync(join(checkout.dir, "dist/cli/main.js"), "utf8")).toBe(compiled)
  })

  it("fails on a type error and leaves no stamp, so the sources keep running through tsx; as npm's prepare step it only warns", async () => {
    checkout = await makeCheckout()
    await sources(checkout, "export const main = async (): Promise<number> => 'not a number'\n")
    const built = await checkout.node(["scripts/build.js"])
    expect(built.code).toBe(1)
    expect(built.out + built.err).toContain("error TS2322")
    expect(built.err).toContain("failed: tsc exited")
    expect(existsSync(join(checkout.dir, "dist/.build-stamp"))).toBe(false)
    const prepared = await checkout.node(["scripts/build.js", "--prepare"])
    expect(prepared.code).toBe(0)
    expect(prepared.err).toContain("run the TypeScript sources through tsx until `npm run build` succeeds")
  })

  it("as npm's prepare step skips where there is nothing to build with (no src/, no compiler) and succeeds; `npm run build` there fails", async () => {
    checkout = await makeCheckout()
    expect(await checkout.node(["scripts/build.js", "--prepare"])).toMatchObject({ code: 0, err: "botfleet build: skipped: no src/ here\n" })
    expect(await checkout.node(["scripts/build.js"])).toMatchObject({ code: 1, err: "botfleet build: failed: no src/ to compile\n" })
    await checkout.remove()
    checkout = await makeCheckout({ withModules: false })
    await sources(checkout, "export const main = async (): Promise<number> => 0\n")
    expect(await checkout.node(["scripts/build.js", "--prepare"])).toMatchObject({ code: 0, err: "botfleet build: skipped: typescript is not installed (a production install)\n" })
    expect((await checkout.node(["scripts/build.js"])).code).toBe(1)
    expect(existsSync(join(checkout.dir, "dist"))).toBe(false)
  })
})
