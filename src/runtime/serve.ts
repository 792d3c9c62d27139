import { Effect, Option } from "effect"
import { AppConfig } from "../config.js"
import { LogLevelSwitch } from "../logging.js"
import { startNode } from "./node.js"
import type { NodeOptions, RunningNode } from "./node.js"

/** The lines `npm start` prints once the node is up: where to chat, and how to from a shell. */
export const bannerFor = (node: RunningNode): ReadonlyArray<string> => {
  const lines = [
    "",
    `botfleet is running (${node.config.mode} mode${node.config.mode === "embedded" ? `, data in ${node.config.dataDir}` : ""}).`,
    `  webhook ingress: ${node.ingressUrl}/telegram/<botId>`
  ]
  if (node.sandbox) {
    const root = node.sandbox.apiRoot
    lines.push(`  Bot API sandbox: ${root}`)
    if (node.aiBaseUrl !== null) lines.push(`  model server (AI replies): ${node.aiBaseUrl}${Option.isNone(node.config.aiBaseUrl) ? " (the offline stub: set AI_BASE_URL for a real model)" : ""}`)
    lines.push("", `Chat with the bots in your browser: ${root}/sandbox`)
    const first = node.demoBots[0]
    if (first) {
      // one name per bot, as the chat page and `botfleet bots list` show it: the id with the @username
      lines.push(
        `Demo bots: ${node.demoBots.map((b) => `${b.botId} (@${b.username})`).join(", ")}`,
        `  every command, REST API route and sandbox URL takes either name, e.g. botfleet tail ${first.botId} or botfleet tail @${first.username}`,
        "",
        "Or with curl, say something as user 42, then read the bot's replies:",
        `  curl -s -X POST ${root}/sandbox/${first.botId}/say -H 'content-type: application/json' -d '{"userId":42,"firstName":"Ada","text":"/start"}'`,
        `  curl -s ${root}/sandbox/${first.botId}/messages?chatId=42`
      )
    }
  }
  lines.push("", "Press Ctrl-C to stop (bots drain and hand their leases back).", "")
  return lines
}

/**
 * Listens for SIGINT/SIGTERM for as long as the scope lives. `received` resolves on the first one.
 * Later signals within `graceMs` are ignored: npm and tsx relay a Ctrl-C to the node as a second
 * signal, and with no listener left tsx would exit the process before it drained. A signal after
 * that is a deliberate second Ctrl-C and exits at once.
 */
export const signalGuard = (graceMs = 2000) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      let first: number | null = null
      let resolve!: (s: NodeJS.Signals) => void
      const received = new Promise<NodeJS.Signals>((r) => (resolve = r))
      const on = (signal: NodeJS.Signals) => {
        if (first === null) {
          first = Date.now()
          resolve(signal)
        } else if (Date.now() - first > graceMs) process.exit(130)
      }
      process.on("SIGINT", on)
      process.on("SIGTERM", on)
      const off = () => {
        process.off("SIGINT", on)
        process.off("SIGTERM", on)
      }
      return { received, off }
    }),
    (g) => Effect.sync(g.off)
  )

/**
 * Runs a node until SIGINT/SIGTERM, then shuts it down gracefully (see startNode). A signal during
 * start-up stops the node as soon as it is up. `print` gets the banner (default: stdout).
 */
export const serve = (options: NodeOptions, print: (line: string) => void = (l) => void process.stdout.write(l + "\n")) =>
  Effect.scoped(
    Effect.gen(function* () {
      const config = yield* AppConfig
      const guard = yield* signalGuard()
      const logLevel = yield* Effect.serviceOption(LogLevelSwitch)
      yield* Effect.scoped(
        Effect.gen(function* () {
          const node = yield* startNode(config, Option.isSome(logLevel) ? { ...options, logLevel: logLevel.value } : options)
          for (const line of bannerFor(node)) print(line)
          const signal = yield* Effect.promise(() => guard.received)
          yield* Effect.logInfo(`${signal} received: stopping`)
        })
      )
      yield* Effect.logInfo("botfleet node stopped")
    })
  )
