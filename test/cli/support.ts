import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { main } from "../../src/cli/main.js"
import type { CliIo } from "../../src/cli/io.js"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { createTestDatabase } from "../support/db.js"
import { createTestPrefix } from "../support/redis.js"

export interface CliResult {
  readonly code: number
  readonly out: string
  readonly err: string
}

/** Runs the botfleet command in-process with `env` as its whole environment, capturing what it prints. */
export const captureCli = async (env: Record<string, string>, argv: ReadonlyArray<string>): Promise<CliResult> => {
  const out: Array<string> = []
  const err: Array<string> = []
  const io: CliIo = { stdout: (t) => out.push(t), stderr: (t) => err.push(t), stderrIsTTY: false, env }
  const code = await main(argv, io)
  return { code, out: out.join("\n"), err: err.join("\n") }
}

/** A production-mode setting for CLI suites: a database and a Redis prefix of their own, a sandbox, a data folder. */
export interface ProductionCliEnv {
  readonly env: Record<string, string>
  readonly dbUrl: string
  readonly redis: { readonly url: string; readonly prefix: string }
  readonly sandbox: Sandbox
  /** Runs the CLI with the suite's environment and `extraEnv` over it. */
  readonly cli: (extraEnv: Record<string, string>, ...argv: Array<string>) => Promise<CliResult>
  readonly cleanup: () => Promise<void>
}

export const productionCliEnv = async (name: string): Promise<ProductionCliEnv> => {
  const db = await createTestDatabase(name)
  const redis = createTestPrefix(name)
  const sandbox = await startSandbox()
  const dir = await mkdtemp(join(tmpdir(), `bf-${name}-`))
  const env = {
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    REDIS_PREFIX: redis.prefix,
    BOTFLEET_SECRET_KEY: Buffer.alloc(32, 7).toString("base64"),
    TELEGRAM_API_ROOT: sandbox.apiRoot,
    DATA_DIR: dir,
    LOG_LEVEL: "warning"
  }
  return {
    env,
    dbUrl: db.url,
    redis: { url: redis.url, prefix: redis.prefix },
    sandbox,
    cli: (extraEnv, ...argv) => captureCli({ ...env, ...extraEnv }, argv),
    cleanup: async () => {
      await sandbox.close()
      await redis.cleanup()
      await db.drop()
      await rm(dir, { recursive: true, force: true })
    }
  }
}
