import { readFileSync } from "node:fs"
import { registry } from "../events/schema/registry.js"

/**
 * The version this node runs: package.json's, read once. From src/runtime (tsx) and from
 * dist/src/runtime (the compiled image) alike.
 */
export const nodeVersion: string = (() => {
  for (const rel of ["../../package.json", "../../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), "utf8")) as { name?: unknown; version?: unknown }
      if (pkg.name === "botfleet" && typeof pkg.version === "string") return pkg.version
    } catch {
      // not there: try the next folder up
    }
  }
  return "unknown"
})()

/** The event types and the newest schema version of each this node reads (what `status` shows beside the version). */
export const readableEventVersions = (): Readonly<Record<string, number>> =>
  Object.fromEntries(Object.entries(registry).map(([type, spec]) => [type, spec.current]))
