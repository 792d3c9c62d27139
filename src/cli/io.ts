import type { HostedNode } from "./hostedNode.js"

/** Where a command writes: stdout for its output (data, --json), stderr for progress and errors. */
export interface CliIo {
  readonly stdout: (text: string) => void
  readonly stderr: (text: string) => void
  /** Progress bars are drawn only on a terminal. */
  readonly stderrIsTTY: boolean
  readonly env: Readonly<Record<string, string | undefined>>
  /** Set when the command runs inside the node that holds DATA_DIR, for another process (hosted.ts). */
  readonly host?: HostedNode
  /** Resolves when whoever reads the output went away (a remote `tail` then stops following). */
  readonly closed?: Promise<void>
}

let quietOnClosedPipe = false

/**
 * A reader that stops early (`botfleet status | head -6`) closes the pipe: the next write fails
 * with EPIPE. Like a Unix tool, the command then ends at once and quietly (exit 0): its reader
 * has what it wanted. Other stream errors stay errors.
 */
const exitQuietlyOnClosedPipe = () => {
  if (quietOnClosedPipe) return
  quietOnClosedPipe = true
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EPIPE") process.exit(0)
      throw e
    })
  }
}

export const processIo = (): CliIo => {
  exitQuietlyOnClosedPipe()
  return processStreams
}

const processStreams: CliIo = {
  stdout: (t) => void process.stdout.write(t.endsWith("\n") ? t : t + "\n"),
  stderr: (t) => void process.stderr.write(t.endsWith("\n") ? t : t + "\n"),
  stderrIsTTY: process.stderr.isTTY === true,
  env: process.env
}

/** Prints a value as one JSON document on stdout. */
export const printJson = (io: CliIo, value: unknown): void => io.stdout(JSON.stringify(value, null, 2))

/** Prints rows as an aligned table (header from the first row's keys). */
export const printTable = (io: CliIo, rows: ReadonlyArray<Record<string, unknown>>): void => {
  if (rows.length === 0) return
  const keys = Object.keys(rows[0]!)
  const cells = [keys, ...rows.map((r) => keys.map((k) => String(r[k] ?? "")))]
  const widths = keys.map((_, i) => Math.max(...cells.map((c) => c[i]!.length)))
  io.stdout(cells.map((c) => c.map((v, i) => v.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n"))
}
