// Which code a start runs: the compiled JavaScript in dist/ (`npm run build`) when it is at least
// as new as every source, else the TypeScript sources through tsx. Shared by bin/botfleet.js and
// `npm start` (bin/start.js).
import { readdirSync, statSync } from "node:fs"
import { fileURLToPath } from "node:url"

const root = new URL("../", import.meta.url)
/** Written by scripts/build.js after a build that compiled and copied everything. */
export const STAMP = "dist/.build-stamp"

const mtimeOf = (path) => {
  try {
    return statSync(path).mtimeMs
  } catch {
    return null
  }
}

/** Whether any file under `dir` changed after `since` (ms); stops at the first one. */
const changedAfter = (dir, since) => {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`
    if (entry.isDirectory() ? changedAfter(path, since) : (mtimeOf(path) ?? 0) > since) return true
  }
  return false
}

/**
 * "dist" or "src" for the checkout at `rootDir`. dist only when its stamp is newer than every file
 * under src/ and both tsconfigs, so an edit, a `git pull` or a checkout of another branch never
 * runs stale JavaScript (the tests that spawn bin/botfleet.js run what the checkout says). Stat-ing
 * the ~260 source files takes 4-16 ms (load 12-17), against ~0.5-1 s for tsx to transpile a start. Without
 * src/ (a package or an image holding dist/ only) dist is all there is.
 */
export const entryKind = (rootDir = fileURLToPath(root)) => {
  const stamp = mtimeOf(`${rootDir}/${STAMP}`)
  if (mtimeOf(`${rootDir}/src`) === null) return "dist"
  if (stamp === null) return "src"
  const configs = ["tsconfig.json", "tsconfig.build.json"].map((f) => mtimeOf(`${rootDir}/${f}`) ?? 0)
  return configs.some((t) => t > stamp) || changedAfter(`${rootDir}/src`, stamp) ? "src" : "dist"
}

/**
 * Imports `dist/<name>.js` or, through tsx, `src/<name>.ts` (`name` like "cli/main"). The tsx
 * path is the one a fresh edit takes; it says so once on a terminal, where the slower start would
 * otherwise go unexplained.
 */
export const importEntry = async (name) => {
  if (entryKind() === "dist") return import(new URL(`dist/${name}.js`, root).href)
  if (process.stderr.isTTY) {
    process.stderr.write("botfleet: running the TypeScript sources through tsx (dist/ is missing or older than src/; `npm run build` compiles it)\n")
  }
  let register
  try {
    ;({ register } = await import("tsx/esm/api"))
  } catch (e) {
    throw new Error(`dist/ is missing or older than src/, and tsx, which runs the sources, cannot be loaded (${e.message}): run \`npm run build\``)
  }
  register()
  return import(new URL(`src/${name}.ts`, root).href)
}
