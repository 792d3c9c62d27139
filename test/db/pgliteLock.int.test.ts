import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import { existsSync, writeFileSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { hostname, tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { lockPgliteDir } from "../../src/db/pgliteLock.js"
import { captureCli } from "../cli/support.js"

/*
 * One process per embedded database: a second node or a CLI command beside a running node is
 * refused with the pid that holds the folder, instead of corrupting PGlite or aborting; a lock
 * left by a process that is gone is taken over.
 */

let dir: string
let holder: ChildProcess
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "bf-lock-"))
  // a live process of someone else's, named in a lock as a running node would be
  holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 120000)"], { stdio: "ignore" })
})
afterAll(async () => {
  holder.kill("SIGKILL")
  await rm(dir, { recursive: true, force: true })
})

const pglite = () => join(dir, "pglite")
const lockFile = () => `${pglite()}.lock`
const writeLock = (pid: number) => writeFileSync(lockFile(), JSON.stringify({ pid, host: hostname(), since: new Date().toISOString() }))

describe("the embedded database's lock", () => {
  it("refuses a second process naming the pid that holds the folder, and takes over a lock whose process is gone", async () => {
    writeLock(holder.pid!)
    const refused = await Effect.runPromiseExit(Effect.scoped(lockPgliteDir(pglite())))
    expect(Exit.isFailure(refused)).toBe(true)
    expect(JSON.stringify(refused)).toContain("DataDirInUse")
    expect(String((refused as { cause: { error: Error } }).cause.error.message)).toContain(`in use by botfleet process ${holder.pid}`)

    const env = { DATA_DIR: dir, BOTFLEET_SECRET_KEY: randomBytes(32).toString("base64"), LOG_LEVEL: "error" }
    for (const argv of [["status"], ["inspect", "some-bot"], ["bots", "list"]]) {
      const r = await captureCli(env, argv)
      expect(r.code, argv.join(" ")).toBe(1)
      expect(r.err, argv.join(" ")).toContain(`in use by botfleet process ${holder.pid}`)
    }
    // nothing was opened: the folder PGlite would have created does not exist
    expect(existsSync(pglite())).toBe(false)

    const gone = new Promise((r) => holder.once("exit", r))
    holder.kill("SIGKILL")
    await gone
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          yield* lockPgliteDir(pglite())
          expect(JSON.parse((yield* Effect.promise(() => import("node:fs/promises").then((f) => f.readFile(lockFile(), "utf8"))))).pid).toBe(process.pid)
        })
      )
    )
    // let go with the scope
    expect(existsSync(lockFile())).toBe(false)
  }, 60_000)

  it("is the process's: taken once, held while any scope of the process holds it", async () => {
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          yield* lockPgliteDir(pglite())
          yield* Effect.scoped(lockPgliteDir(pglite()))
          // the inner scope closed: the outer one still holds the folder
          expect(existsSync(lockFile())).toBe(true)
        })
      )
    )
    expect(existsSync(lockFile())).toBe(false)
  })
})
