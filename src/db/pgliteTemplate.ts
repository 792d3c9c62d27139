import { randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import { readFile, rename, rm, writeFile } from "node:fs/promises"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"

/**
 * A freshly initialised, empty PGlite cluster as a tarball, cached in the OS temp folder.
 * Starting PGlite runs initdb, which takes seconds (tens of seconds on a loaded machine); loading
 * the same cluster from this image takes a fraction of that. The image is what initdb produces,
 * nothing more, so an instance started from it is indistinguishable from a fresh one.
 * The file name carries the PGlite version: an upgrade makes a new image.
 */
const imagePath = (): string => {
  // the package does not export its package.json: find it beside the resolved entry point
  const entry = createRequire(import.meta.url).resolve("@electric-sql/pglite")
  const pkg = JSON.parse(readFileSync(join(dirname(entry), "..", "package.json"), "utf8")) as { version: string }
  return join(tmpdir(), `botfleet-pglite-${pkg.version}-empty.tar`)
}

let inProcess: Promise<Blob> | undefined

const buildImage = async (): Promise<Blob> => {
  // imported where used: this module is loaded in production mode too (pgliteSql.ts)
  const { PGlite } = await import("@electric-sql/pglite")
  const db = await PGlite.create()
  try {
    const image = await db.dumpDataDir("none")
    // write under a unique name, then rename: a concurrent reader never sees half a file
    const partial = `${imagePath()}.${randomBytes(4).toString("hex")}.partial`
    await writeFile(partial, Buffer.from(await image.arrayBuffer()))
    await rename(partial, imagePath())
    return image
  } finally {
    await db.close()
  }
}

/** The empty-cluster image, from this process's cache, the temp folder, or built now. */
export const emptyClusterImage = (): Promise<Blob> => {
  inProcess ??= readFile(imagePath()).then(
    (bytes) => new Blob([bytes]),
    () => buildImage()
  )
  return inProcess
}

/** Forgets an image that failed to load (e.g. a truncated file), so the next start rebuilds it. */
export const discardClusterImage = async (): Promise<void> => {
  inProcess = undefined
  await rm(imagePath(), { force: true })
}
