import { rm } from "node:fs/promises"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { makeCheckout } from "./checkout.js"
import type { Checkout } from "./checkout.js"

/*
 * bin/botfleet.js runs the compiled CLI only while the build is current: a checkout's sources
 * newer than the build run through tsx, so an edit or a pull never runs stale JavaScript (the
 * spawned-CLI tests included). Each case is a real `node bin/botfleet.js` in a throwaway checkout
 * whose src/ and dist/ say which one ran.
 */

const mainSaying = (who: string) =>
  `export const main = async (argv) => { console.log("${who} " + argv.join(" ")); return 3 }\n`

const layout = async (c: Checkout) => {
  await c.write("src/cli/main.ts", mainSaying("src").replace("(argv)", "(argv: ReadonlyArray<string>): Promise<number>"))
  await c.write("src/telegram/sandbox/page.html", "<p>hi</p>\n")
  await c.write("tsconfig.json", "{}\n")
  await c.write("tsconfig.build.json", "{}\n")
  await c.write("dist/cli/main.js", mainSaying("dist"))
  await c.write("dist/.build-stamp", "")
  // the build 30 s ago, every source older: the build is current (and a source touched now is
  // newer, whatever the file system's time resolution)
  await c.age("dist/.build-stamp", 30)
  for (const f of ["src/cli/main.ts", "src/telegram/sandbox/page.html", "tsconfig.json", "tsconfig.build.json"]) await c.age(f, 60)
}

describe("bin/botfleet.js picks the build or the sources", () => {
  let checkout: Checkout | undefined
  afterEach(async () => {
    await checkout?.remove()
    checkout = undefined
  })

  it("runs dist/ when its build is newer than every source, passing the arguments and the exit code", async () => {
    checkout = await makeCheckout()
    await layout(checkout)
    const r = await checkout.node(["bin/botfleet.js", "bots", "list"])
    expect(r).toMatchObject({ code: 3, out: "dist bots list\n" })
  })

  it("runs the sources through tsx when a file under src/ (any depth, any kind) or a tsconfig changed after the build", async () => {
    checkout = await makeCheckout()
    await layout(checkout)
    for (const changed of ["src/telegram/sandbox/page.html", "src/cli/main.ts", "tsconfig.build.json"]) {
      await checkout.age(changed, 0)
      const r = await checkout.node(["bin/botfleet.js", "--version"])
      expect({ changed, ...r }).toMatchObject({ changed, code: 3, out: "src --version\n" })
      await checkout.age(changed, 60)
    }
    expect((await checkout.node(["bin/botfleet.js"])).out).toBe("dist \n")
  })

  it("runs the sources when there is no build yet, and the build alone when there are no sources (an image, a package)", async () => {
    checkout = await makeCheckout()
    await layout(checkout)
    await rm(join(checkout.dir, "dist/.build-stamp"))
    expect((await checkout.node(["bin/botfleet.js", "x"])).out).toBe("src x\n")
    await rm(join(checkout.dir, "src"), { recursive: true })
    expect((await checkout.node(["bin/botfleet.js", "x"])).out).toBe("dist x\n")
  })

  it("says to build when the build is stale and tsx is not installed, running nothing", async () => {
    checkout = await makeCheckout({ withModules: false })
    await layout(checkout)
    await checkout.age("src/cli/main.ts", 0)
    const r = await checkout.node(["bin/botfleet.js", "bots", "list"])
    expect(r.code).toBe(1)
    expect(r.err).toContain("dist/ is missing or older than src/, and tsx, which runs the sources, cannot be loaded")
    expect(r.err).toContain("npm run build")
    expect(r.out).toBe("")
  })

  it("starts the node of `npm start` (bin/start.js) from the same choice", async () => {
    checkout = await makeCheckout()
    await layout(checkout)
    await checkout.write("src/main.ts", `console.log("node from src" as string)\n`)
    await checkout.write("dist/main.js", `console.log("node from dist")\n`)
    await checkout.age("src/main.ts", 60)
    expect((await checkout.node(["bin/start.js"])).out).toBe("node from dist\n")
    await checkout.age("src/main.ts", 0)
    expect((await checkout.node(["bin/start.js"])).out).toBe("node from src\n")
  })
})
