import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs"
import { hostname } from "node:os"
import { dirname, resolve } from "node:path"
import { Data, Effect } from "effect"

/*
 * One process per PGlite folder (DATA_DIR/pglite). PGlite is a database in a folder with no server
 * in front: a second process opening the same folder (a second `npm start`, a CLI command beside a
 * running node) corrupts what the first writes, or aborts. So whoever opens it first takes an
 * exclusive lock file beside it (`<folder>.lock`, naming its pid), and every other process is
 * refused with that pid until it lets go. A lock whose process is gone (kill -9, a crash, a
 * reboot) is taken over.
 */

export class DataDirInUse extends Data.TaggedError("DataDirInUse")<{ readonly dataDir: string; readonly pid: number; readonly host: string }> {
  override get message() {
    return `the embedded database ${this.dataDir} is in use by botfleet process ${this.pid}${this.host === hostname() ? "" : ` on ${this.host}`}: ` +
      "one process per DATA_DIR (a running node holds it). Stop that process first, or point DATA_DIR at a copy"
  }
}

export class DataDirLockFailed extends Data.TaggedError("DataDirLockFailed")<{ readonly dataDir: string; readonly cause: unknown }> {
  override get message() {
    return `cannot lock the embedded database ${this.dataDir}: ${(this.cause as Error)?.message ?? String(this.cause)}`
  }
}


const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    // EPERM: it exists, it is someone else's
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

export interface Holder {
  readonly pid: number
  readonly host: string
}

const readHolder = (path: string): Holder | null => {
  try {
    const parsed = JSON.parse(readFileSync(path, "utf8")) as Partial<Holder>
    return typeof parsed.pid === "number" ? { pid: parsed.pid, host: typeof parsed.host === "string" ? parsed.host : hostname() } : null
  } catch {
    // half-written or unreadable: whoever wrote it did not finish taking it
    return null
  }
}

/** Takes the lock or says who holds it; a lock of a process that is gone is taken over. */
const lockPath = (dir: string) => `${resolve(dir)}.lock`

const take = (dataDir: string): Holder | null => {
  mkdirSync(dirname(resolve(dataDir)), { recursive: true })
  const path = lockPath(dataDir)
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o600)
      writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }))
      closeSync(fd)
      return null
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
    }
    const holder = readHolder(path)
    // another host's lock (a shared folder) cannot be checked from here: it holds
    if (holder !== null && (holder.host !== hostname() || alive(holder.pid))) return holder
    rmSync(path, { force: true })
  }
  const holder = readHolder(path)
  return holder ?? { pid: -1, host: hostname() }
}

const release = (dataDir: string) => {
  const path = lockPath(dataDir)
  const holder = readHolder(path)
  if (holder !== null && holder.pid === process.pid && holder.host === hostname()) rmSync(path, { force: true })
}

/** Scopes of this process holding each folder: the lock is the process's, taken once, let go with the last. */
const held = new Map<string, number>()

/**
 * Holds DATA_DIR for this process for the life of the scope. Re-entrant within the process (a
 * command may open the log and the projections separately): only other processes are refused.
 */
export const lockPgliteDir = (dataDir: string) => {
  const key = resolve(dataDir)
  return Effect.acquireRelease(
    Effect.suspend(() => {
      const n = held.get(key) ?? 0
      if (n > 0) return Effect.sync(() => void held.set(key, n + 1))
      return Effect.try({ try: () => take(dataDir), catch: (cause) => new DataDirLockFailed({ dataDir, cause }) }).pipe(
        Effect.flatMap((holder) =>
          holder === null ? Effect.sync(() => void held.set(key, 1)) : Effect.fail(new DataDirInUse({ dataDir, pid: holder.pid, host: holder.host }))
        )
      )
    }),
    () =>
      Effect.sync(() => {
        const n = (held.get(key) ?? 1) - 1
        if (n > 0) return void held.set(key, n)
        held.delete(key)
        release(dataDir)
      })
  )
}

/**
 * The live process on this host that holds the folder, if any (not this process): what the CLI
 * asks before opening it, to send its command to that node instead (cli/remote/).
 */
export const liveHolder = (dataDir: string): Holder | null => {
  const holder = readHolder(lockPath(dataDir))
  if (holder === null || holder.host !== hostname() || holder.pid === process.pid || !alive(holder.pid)) return null
  return holder
}
