import { join, resolve } from "node:path"
import { Data } from "effect"
import { liveHolder } from "../../db/pgliteLock.js"
import { redactString } from "../../logging.js"
import { EXIT_FAILURE } from "../exitCodes.js"
import type { CliIo } from "../io.js"
import { readEndpoint } from "./endpointFile.js"
import { forwardingOf } from "./forwarding.pure.js"

/*
 * The CLI beside a running embedded node. PGlite allows one process per data folder, so while a
 * node holds DATA_DIR a command does not open the database: it is sent, as its command line, to
 * that node (endpointFile.ts says where and with what credential), which runs the very same
 * command on its own stores (cli/hosted.ts) and streams back what it prints and its exit code.
 * Output and exit codes are therefore those of the command run directly. Commands that need the
 * folder to themselves are refused with what to do instead.
 */

/** The command needs DATA_DIR to itself while a node holds it. */
export class NodeHoldsDataDir extends Data.TaggedError("NodeHoldsDataDir")<{ readonly command: string; readonly pid: number; readonly dataDir: string; readonly why: string }> {
  override get message() {
    return `botfleet ${this.command} cannot run while the botfleet node (pid ${this.pid}) holds ${this.dataDir}: ${this.why}.\nStop that node (Ctrl-C where it runs, or kill ${this.pid}), then run the command again.`
  }
}

/** The node that published where it takes commands did not answer, or broke off. */
export class NodeUnreachable extends Data.TaggedError("NodeUnreachable")<{ readonly pid: number; readonly dataDir: string; readonly detail: string }> {
  override get message() {
    return (
      `the botfleet node (pid ${this.pid}) holds ${this.dataDir} but did not take the command: ${this.detail}.\n` +
      "If it is stopping, run the command again in a moment; otherwise stop that node and run the command again."
    )
  }
}

const unset = (v: string | undefined) => v === undefined || v.trim() === ""

const readStdin = (): Promise<string> =>
  new Promise((done) => {
    const chunks: Array<Buffer> = []
    process.stdin.on("data", (c: Buffer) => chunks.push(c))
    process.stdin.on("end", () => done(Buffer.concat(chunks).toString("utf8")))
    process.stdin.on("error", () => done(""))
  })

/** The bot token a `bots add | rotate-token` reads here (BOT_TOKEN, else a piped stdin), sent along to the node. */
const tokenFor = async (argv: ReadonlyArray<string>, io: CliIo): Promise<string | undefined> => {
  if (argv[0] !== "bots" || (argv[1] !== "add" && argv[1] !== "rotate-token")) return undefined
  const fromEnv = io.env["BOT_TOKEN"]?.trim()
  if (fromEnv) return fromEnv
  if (process.stdin.isTTY === true) return undefined
  return (await readStdin()).trim() || undefined
}

/**
 * The command line as the node must read it: the node has another working directory, so a file
 * argument (`bots configure --file patch.json`) is made absolute here (same host, same files).
 */
export const withAbsoluteFiles = (argv: ReadonlyArray<string>): ReadonlyArray<string> =>
  argv.map((a, i) => {
    if (a.startsWith("--file=")) return `--file=${resolve(a.slice("--file=".length))}`
    return i > 0 && argv[i - 1] === "--file" ? resolve(a) : a
  })

type Line = { readonly out: string } | { readonly err: string } | { readonly exit: number }

/**
 * Runs `argv` on the embedded node that holds DATA_DIR and resolves with its exit code; null when
 * no live node holds the folder (production mode, no node, or a stale lock): the command runs here.
 */
export const forwardToNode = async (argv: ReadonlyArray<string>, io: CliIo): Promise<number | null> => {
  const forwarding = forwardingOf(argv)
  if (forwarding._tag === "Local" || io.host !== undefined) return null
  if (!unset(io.env["DATABASE_URL"]) || !unset(io.env["REDIS_URL"])) return null
  const dataDir = resolve(unset(io.env["DATA_DIR"]) ? "./.data" : io.env["DATA_DIR"]!)
  const pgliteDir = join(dataDir, "pglite")
  const holder = liveHolder(pgliteDir)
  if (holder === null) return null
  const fail = (e: Error) => {
    io.stderr(e.message)
    return EXIT_FAILURE
  }
  if (forwarding._tag === "Refuse") return fail(new NodeHoldsDataDir({ command: forwarding.command, pid: holder.pid, dataDir, why: forwarding.why }))
  // not published (the node starts or stops, or the holder is another command): the command runs
  // here and is refused by the lock, naming the pid (DataDirInUse)
  const endpoint = readEndpoint(pgliteDir, holder.pid)
  if (endpoint === null) return null

  const token = await tokenFor(argv, io)
  let res: Response
  try {
    res = await fetch(`${endpoint.url}/_internal/cli`, {
      method: "POST",
      headers: { authorization: `Bearer ${endpoint.credential}`, "content-type": "application/json" },
      body: JSON.stringify({ argv: withAbsoluteFiles(argv), ...(token !== undefined ? { token } : {}) })
    })
  } catch (e) {
    return fail(new NodeUnreachable({ pid: holder.pid, dataDir, detail: `${endpoint.url}: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}` }))
  }
  if (!res.ok || res.body === null) {
    const text = redactString(await res.text().catch(() => ""))
    return fail(new NodeUnreachable({ pid: holder.pid, dataDir, detail: `HTTP ${res.status} ${text.slice(0, 200)}`.trim() }))
  }
  // ndjson: what the command printed, in order, then its exit code
  let code: number | null = null
  let rest = ""
  const decoder = new TextDecoder()
  const take = (line: string) => {
    if (line === "") return
    const l = JSON.parse(line) as Line
    if ("out" in l) io.stdout(l.out)
    else if ("err" in l) io.stderr(l.err)
    else code = l.exit
  }
  try {
    for await (const chunk of res.body) {
      rest += decoder.decode(chunk, { stream: true })
      const lines = rest.split("\n")
      rest = lines.pop()!
      for (const line of lines) take(line)
    }
    take(rest)
  } catch (e) {
    return fail(new NodeUnreachable({ pid: holder.pid, dataDir, detail: `the answer broke off: ${(e as Error).message}` }))
  }
  return code ?? fail(new NodeUnreachable({ pid: holder.pid, dataDir, detail: "the answer broke off before the command ended (did the node stop?)" }))
}
