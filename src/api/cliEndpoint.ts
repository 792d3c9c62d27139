import { createHash, timingSafeEqual } from "node:crypto"
import type { FastifyPluginAsync } from "fastify"
import type { HostedNode } from "../cli/hostedNode.js"
import type { CliIo } from "../cli/io.js"
import { forwardingOf } from "../cli/remote/forwarding.pure.js"
import { redactString } from "../logging.js"

/*
 * `POST /_internal/cli` on an embedded node: a CLI command sent by another process on this host
 * (cli/remote/remote.ts) because this node holds DATA_DIR. The node runs the same command code on
 * its own stores and streams back, as ndjson, each line the command prints ({"out"} / {"err"}),
 * then {"exit": code}. Only the holder of this run's credential (DATA_DIR/pglite.node.json, mode
 * 0600) may call it; the embedded node listens on 127.0.0.1 only.
 */

export interface CliEndpointOptions {
  /** This run's credential; only its hash is kept here, compared in constant time. */
  readonly credential: string
  readonly host: HostedNode
  /** The CLI (cli/main.ts `main`), injected: the node does not import the CLI's commands. */
  readonly run: (argv: ReadonlyArray<string>, io: CliIo) => Promise<number>
  /** The environment the node's configuration came from: the command reads the same. */
  readonly env: Readonly<Record<string, string | undefined>>
}

const sha256 = (s: string) => createHash("sha256").update(s).digest()

const isBody = (b: unknown): b is { argv: Array<string>; token?: string } => {
  const o = b as { argv?: unknown; token?: unknown } | null
  return (
    typeof o === "object" &&
    o !== null &&
    Array.isArray(o.argv) &&
    o.argv.length <= 200 &&
    o.argv.every((a) => typeof a === "string") &&
    (o.token === undefined || typeof o.token === "string")
  )
}

/** The endpoint, and `closeAll`: ends what still runs (a following `tail`) so the server can close. */
export const cliEndpoint = (o: CliEndpointOptions): { readonly plugin: FastifyPluginAsync; readonly closeAll: () => void } => {
  const expected = sha256(o.credential)
  const running = new Set<() => void>()
  const plugin: FastifyPluginAsync = async (app) => {
    app.post("/_internal/cli", { bodyLimit: 256 * 1024 }, async (req, reply) => {
      const given = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "")?.[1] ?? ""
      if (!timingSafeEqual(sha256(given), expected)) return reply.code(401).send({ code: "unauthorized", message: "this node's CLI credential is missing or wrong" })
      if (!isBody(req.body)) return reply.code(400).send({ code: "invalid_request", message: "expected {argv: string[], token?: string}" })
      const { argv, token } = req.body
      if (forwardingOf(argv)._tag !== "Forward") return reply.code(400).send({ code: "not_forwarded", message: `botfleet ${argv.slice(0, 2).join(" ")} does not run on a node` })

      void reply.hijack()
      const res = reply.raw
      res.writeHead(200, { "content-type": "application/x-ndjson", "cache-control": "no-store" })
      let stop!: () => void
      const closed = new Promise<void>((r) => (stop = r))
      res.on("close", stop)
      running.add(stop)
      const send = (line: object) => {
        if (!res.writableEnded && !res.destroyed) res.write(JSON.stringify(line) + "\n")
      }
      // the sender's token reaches the command as BOT_TOKEN would; the node's own env never does
      const { BOT_TOKEN: _, ...env } = o.env
      const io: CliIo = {
        stdout: (t) => send({ out: t }),
        stderr: (t) => send({ err: t }),
        stderrIsTTY: false,
        env: token !== undefined ? { ...env, BOT_TOKEN: token } : env,
        host: o.host,
        closed
      }
      let code: number
      try {
        code = await o.run(argv, io)
      } catch (e) {
        send({ err: `botfleet failed unexpectedly (a bug; please report it with this output):\n${redactString(e instanceof Error ? (e.stack ?? e.message) : String(e))}` })
        code = 1
      }
      running.delete(stop)
      send({ exit: code })
      res.end()
    })
  }
  return { plugin, closeAll: () => running.forEach((stop) => stop()) }
}
