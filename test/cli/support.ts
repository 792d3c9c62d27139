import { main } from "../../src/cli/main.js"
import type { CliIo } from "../../src/cli/io.js"

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
