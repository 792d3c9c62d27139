import { execFile } from "node:child_process"
import { cp, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

/*
 * A throwaway checkout for the build and entry tests: this repository's bin/ and scripts/, a
 * package.json, and node_modules linked (tsx, typescript) unless asked not to; each test writes
 * the sources and dist files it needs.
 */

const repo = fileURLToPath(new URL("../../", import.meta.url))

export interface Checkout {
  readonly dir: string
  /** Writes `text` to `path` (relative), folders made as needed. */
  readonly write: (path: string, text: string) => Promise<void>
  /** Sets `path`'s modification time to `secondsAgo` before now. */
  readonly age: (path: string, secondsAgo: number) => Promise<void>
  /** Runs `node <args>` in the checkout; never rejects. */
  readonly node: (args: ReadonlyArray<string>) => Promise<{ code: number; out: string; err: string }>
  readonly remove: () => Promise<void>
}

export const makeCheckout = async (options: { withModules?: boolean } = {}): Promise<Checkout> => {
  const dir = await mkdtemp(join(tmpdir(), "bf-checkout-"))
  await cp(join(repo, "bin"), join(dir, "bin"), { recursive: true })
  await cp(join(repo, "scripts"), join(dir, "scripts"), { recursive: true })
  await writeFile(join(dir, "package.json"), JSON.stringify({ name: "checkout", type: "module" }))
  if (options.withModules !== false) await symlink(join(repo, "node_modules"), join(dir, "node_modules"), "dir")
  const write = async (path: string, text: string) => {
    await mkdir(dirname(join(dir, path)), { recursive: true })
    await writeFile(join(dir, path), text)
  }
  const age = async (path: string, secondsAgo: number) => {
    const t = new Date(Date.now() - secondsAgo * 1000)
    await utimes(join(dir, path), t, t)
  }
  const node = (args: ReadonlyArray<string>) =>
    new Promise<{ code: number; out: string; err: string }>((resolve) => {
      execFile(process.execPath, [...args], { cwd: dir, timeout: 60_000 }, (error, out, err) =>
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, out, err })
      )
    })
  return { dir, write, age, node, remove: () => rm(dir, { recursive: true, force: true }) }
}
