import { spawn } from "node:child_process"

export interface PromtoolResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs Prometheus's promtool (Debian package `prometheus`; `bash .ci/run` installs it). Fails
 * with a sentence saying so when it is missing: the checks that need it never skip.
 */
export const promtool = (args: ReadonlyArray<string>, stdin?: string): Promise<PromtoolResult> =>
  new Promise((resolve, reject) => {
    const child = spawn("promtool", [...args], { stdio: ["pipe", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()))
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()))
    child.on("error", (e: NodeJS.ErrnoException) =>
      reject(e.code === "ENOENT" ? new Error("promtool is not installed: install Debian's prometheus package (bash .ci/run does)") : e)
    )
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }))
    child.stdin.end(stdin ?? "")
  })
