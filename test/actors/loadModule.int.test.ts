import { readFile } from "node:fs/promises"
import { fileURLToPath } from "node:url"
import ts from "typescript"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeCheckout } from "../build/checkout.js"
import type { Checkout } from "../build/checkout.js"

/*
 * A compiled node (dist/, no tsx registered anywhere) still loads an owner's bot module written in
 * TypeScript (BOT_MODULES, `replay --kinds`), on the main thread and on a worker thread: the very
 * loadModule the build emits, run by plain node.
 */

const ownerBots = fileURLToPath(new URL("../runtime/fixtures/ownerBots.ts", import.meta.url))

const probe = `
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads"
import { loadModule } from "./dist/actors/worker/loadModule.js"
const load = async () => {
  const m = await loadModule(workerData?.module ?? process.argv[2])
  return { kinds: Object.keys(m.botModules), composer: m.botModules.counter({ prefix: "n" }).constructor.name, schemas: Object.keys(m.botConfigSchemas) }
}
if (isMainThread) {
  const main = await load()
  const worker = await new Promise((resolve, reject) => {
    const w = new Worker(new URL(import.meta.url), { workerData: { module: process.argv[2] } })
    w.once("message", resolve)
    w.once("error", reject)
  })
  console.log(JSON.stringify({ main, worker, tsxOnMain: process.execArgv.join(" ") }))
} else {
  parentPort.postMessage(await load())
}
`

describe("loadModule, compiled", () => {
  let checkout: Checkout
  beforeAll(async () => {
    checkout = await makeCheckout()
    const source = await readFile(new URL("../../src/actors/worker/loadModule.ts", import.meta.url), "utf8")
    const compiled = ts.transpileModule(source, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022 } }).outputText
    await checkout.write("dist/actors/worker/loadModule.js", compiled)
    await checkout.write("probe.js", probe)
  })
  afterAll(() => checkout.remove())

  it("loads an owner's .ts bot module on the main thread and on a worker thread without tsx registered", async () => {
    const r = await checkout.node(["probe.js", ownerBots])
    expect(r.err).toBe("")
    const seen = { kinds: ["counter"], composer: "Composer", schemas: ["counter"] }
    expect(JSON.parse(r.out)).toEqual({ main: seen, worker: seen, tsxOnMain: "" })
  })

  it("still refuses a module that does not exist, with Node's own error", async () => {
    const r = await checkout.node(["probe.js", fileURLToPath(new URL("./fixtures/noSuchBots.ts", import.meta.url))])
    expect(r.code).toBe(1)
    expect(r.err).toContain("noSuchBots.ts")
  })
})
