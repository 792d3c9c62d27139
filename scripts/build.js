// `npm run build`: src/ → dist/ (tsc, incremental), the non-TypeScript files of src/ copied beside
// the compiled ones (pages and scripts the node serves), then the stamp bin/entry.js compares
// with the sources. `--prepare` (npm's prepare step, run by `npm ci` / `npm install` in a
// checkout): no compiler or no src/ (a production install, the image's dependency stage) skips,
// and a failed build only warns, since bin/botfleet.js and `npm start` then run the sources
// through tsx; `npm run build` itself fails on any error.
import { spawnSync } from "node:child_process"
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, utimesSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import { rewriteEffectImports } from "./effectImports.js"

const root = fileURLToPath(new URL("../", import.meta.url))
const prepare = process.argv.includes("--prepare")
const say = (line) => process.stderr.write(`botfleet build: ${line}\n`)

const copyAssets = (dir) => {
  let copied = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const from = join(dir, entry.name)
    if (entry.isDirectory()) copied += copyAssets(from)
    else if (!entry.name.endsWith(".ts")) {
      const to = join(root, "dist", relative(join(root, "src"), from))
      mkdirSync(dirname(to), { recursive: true })
      copyFileSync(from, to)
      copied++
    }
  }
  return copied
}

const build = () => {
  if (!existsSync(join(root, "src"))) return prepare ? "skipped: no src/ here" : "failed: no src/ to compile"
  let tsc
  try {
    tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
  } catch {
    return prepare ? "skipped: typescript is not installed (a production install)" : "failed: typescript is not installed (npm ci)"
  }
  // the stamp carries the time the build began: a source saved while tsc ran is newer than it,
  // so that edit runs through tsx until the next build rather than being taken as compiled
  const began = new Date()
  const r = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], { stdio: "inherit" })
  if (r.status !== 0) return `failed: tsc exited ${r.status ?? r.signal}`
  // Effect module by module, not its whole index (effectImports.js): a CLI start loads less
  rewriteEffectImports(join(root, "dist"))
  const copied = copyAssets(join(root, "src"))
  const stamp = join(root, "dist", ".build-stamp")
  closeSync(openSync(stamp, "w"))
  utimesSync(stamp, began, began)
  return `dist/ is current (${copied} asset files copied)`
}

const outcome = build()
say(outcome)
if (outcome.startsWith("failed")) {
  if (prepare) say("bin/botfleet.js and npm start run the TypeScript sources through tsx until `npm run build` succeeds")
  else process.exitCode = 1
}
