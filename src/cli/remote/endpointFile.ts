import { randomBytes } from "node:crypto"
import { closeSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs"
import { hostname } from "node:os"
import { resolve } from "node:path"

/*
 * How a CLI command finds the embedded node that holds DATA_DIR: the node writes, beside its lock
 * (`DATA_DIR/pglite.lock`), `DATA_DIR/pglite.node.json` (mode 0600, the data folder's owner only):
 * its pid, the URL of its HTTP port (bound to 127.0.0.1 in embedded mode) and a credential made
 * for this run. Whoever can read the file could open the database files beside it anyway. The
 * file is written once the node is ready and removed when it starts stopping; one left by a killed
 * node names a pid that no longer holds the lock, and is ignored.
 */

export interface NodeEndpoint {
  readonly pid: number
  readonly host: string
  /** The node's HTTP root, e.g. http://127.0.0.1:8080. */
  readonly url: string
  /** The per-run credential (Authorization: Bearer); random, never logged. */
  readonly credential: string
}

export const endpointPath = (pgliteDir: string): string => `${resolve(pgliteDir)}.node.json`

/** A fresh credential for one run of a node: 32 random bytes. */
export const makeCredential = (): string => randomBytes(32).toString("base64url")

/** Writes the file whole (a reader never sees half of it): a 0600 temporary file renamed over it. */
export const writeEndpoint = (pgliteDir: string, endpoint: Omit<NodeEndpoint, "pid" | "host">): void => {
  const path = endpointPath(pgliteDir)
  const tmp = `${path}.${process.pid}.tmp`
  rmSync(tmp, { force: true })
  const fd = openSync(tmp, "wx", 0o600)
  try {
    writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), ...endpoint }))
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
}

/** The endpoint of the node `pid` (null: none, unreadable, or another process's file). */
export const readEndpoint = (pgliteDir: string, pid: number): NodeEndpoint | null => {
  try {
    const e = JSON.parse(readFileSync(endpointPath(pgliteDir), "utf8")) as Partial<NodeEndpoint>
    if (e.pid !== pid || e.host !== hostname() || typeof e.url !== "string" || typeof e.credential !== "string") return null
    return { pid: e.pid, host: e.host, url: e.url, credential: e.credential }
  } catch {
    return null
  }
}

/** Removes the file if it is this process's. */
export const removeEndpoint = (pgliteDir: string): void => {
  if (readEndpoint(pgliteDir, process.pid) !== null) rmSync(endpointPath(pgliteDir), { force: true })
}
