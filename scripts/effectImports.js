// Part of `npm run build` (scripts/build.js): the compiled JavaScript imports Effect module by
// module. `import { Effect, Schema } from "effect"` loads effect's index, which loads all of its
// ~175 modules (and, through FastCheck, fast-check): ~600 modules and a third of a CLI start.
// Each name of that index is a namespace re-exported from a module of its own (`export * as
// Effect from "./Effect.js"`), so `import * as Effect from "effect/Effect"` is the same module
// object, and only the modules the program uses are loaded. The sources keep the usual import
// (tsx and the tests run them as they are); only dist/ is rewritten.
import { readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

/**
 * The names effect's index exports: namespace name → its module ("Effect" → "Effect"), and the
 * functions it re-exports from effect/Function (pipe, flow...). Null when effect is not installed.
 */
export const effectIndex = () => {
  let source
  try {
    source = readFileSync(fileURLToPath(import.meta.resolve("effect")), "utf8")
  } catch {
    return null
  }
  const namespaces = new Map()
  for (const [, name, file] of source.matchAll(/^export \* as (\w+) from "\.\/(\w+)\.js";?$/gm)) namespaces.set(name, file)
  const functions = new Set()
  for (const [, names] of source.matchAll(/^export \{([^}]*)\} from "\.\/Function\.js";?$/gm)) {
    // the list carries each function's doc comment
    for (const n of names.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "").split(",")) if (n.trim() !== "") functions.add(n.trim())
  }
  return { namespaces, functions }
}

const importLine = /^import \{([^}]*)\} from "effect";?$/gm

/**
 * `source` with each `import { A, B as C } from "effect"` line replaced, on the same line (source
 * maps stay right), by one import per module. A line naming anything the index does not export
 * as a namespace or a function of effect/Function is left as it is.
 */
export const deepEffectImports = (source, index) =>
  source.replace(importLine, (line, list) => {
    const specifiers = list.split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) => {
      const [name, alias = name] = s.split(/\s+as\s+/)
      return { name, alias }
    })
    if (!specifiers.every((s) => index.namespaces.has(s.name) || index.functions.has(s.name))) return line
    const imports = specifiers.filter((s) => index.namespaces.has(s.name)).map((s) => `import * as ${s.alias} from "effect/${index.namespaces.get(s.name)}";`)
    const functions = specifiers.filter((s) => !index.namespaces.has(s.name))
    if (functions.length > 0) imports.push(`import { ${functions.map((s) => (s.alias === s.name ? s.name : `${s.name} as ${s.alias}`)).join(", ")} } from "effect/Function";`)
    return imports.join(" ")
  })

/** Rewrites every .js file under `dir` in place; returns how many changed (0 without effect). */
export const rewriteEffectImports = (dir) => {
  const index = effectIndex()
  if (index === null) return 0
  let changed = 0
  const walk = (d) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (entry.name.endsWith(".js")) {
        const before = readFileSync(path, "utf8")
        const after = deepEffectImports(before, index)
        if (after !== before) {
          writeFileSync(path, after)
          changed++
        }
      }
    }
  }
  walk(dir)
  return changed
}
