import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Effect, Exit, Redacted, Scope } from "effect"
import { loadConfig } from "../../src/config.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makeFleetDirectory } from "../../src/runtime/fleetDirectory.js"
import { registerBot } from "../../src/runtime/registerBot.js"
import { openStores } from "../../src/runtime/stores.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { makeTokenVault } from "../../src/telegram/tokenVault.js"
import { freePort } from "./privateServers.js"
import type { DrillBot } from "./webhookLoad.js"

/*
 * Several `botfleet run` processes (production mode) sharing one fleet, for the many-nodes test
 * and bench/fleet.ts: webhook bots registered up front, each node on its own port, its JSON log
 * lines kept, SIGTERM (graceful) or SIGKILL on demand.
 */

const bin = fileURLToPath(new URL("../../bin/botfleet.js", import.meta.url))

export interface NodeProcess {
  readonly nodeId: string
  readonly ingressUrl: string
  readonly child: ChildProcess
  readonly lines: Array<Record<string, unknown>>
  readonly stderr: string[]
  exited: { code: number | null; signal: NodeJS.Signals | null } | null
  readonly exit: Promise<void>
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Webhook bots of the built-in kind answering every text, registered (and listed) before any node starts. */
export const registerWebhookBots = async (env: Record<string, string>, telegram: Sandbox, count: number, prefix = "fb"): Promise<ReadonlyArray<DrillBot>> => {
  const bots = Array.from({ length: count }, (_, i) => ({ botId: `${prefix}-${String(i).padStart(4, "0")}`, username: `${prefix}_${i}_bot` }))
  const config = await Effect.runPromise(loadConfig({ ...env, LOG_LEVEL: "warning" }))
  const scope = await Effect.runPromise(Scope.make())
  try {
    const stores = await Effect.runPromise(Scope.extend(openStores(config), scope))
    const vault = makeTokenVault(config.secretKey)
    const directory = makeFleetDirectory(stores.sql)
    for (let i = 0; i < bots.length; i += 20) {
      await Promise.all(
        bots.slice(i, i + 20).map((b) => {
          const tg = telegram.world.createBot({ username: b.username })
          return Effect.runPromise(
            registerBot({
              log: stores.log,
              vault,
              directory,
              nodeId: "fleet-setup",
              bot: { botId: b.botId, ownerId: "fleet-owner", name: b.username, kind: "builtin", mode: "webhook", token: Redacted.make(tg.token), config: { fallback: "noted" } }
            })
          )
        })
      )
    }
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
  return bots
}

/** Starts `botfleet run --no-sandbox` as node `nodeId` on a free port (its PUBLIC_URL). */
export const spawnNode = async (env: Record<string, string>, nodeId: string, extra: Record<string, string> = {}): Promise<NodeProcess> => {
  const port = await freePort()
  const ingressUrl = `http://127.0.0.1:${port}`
  const child = spawn(process.execPath, [bin, "run", "--no-sandbox"], {
    env: { ...process.env, ...env, NODE_ID: nodeId, HTTP_PORT: String(port), PUBLIC_URL: ingressUrl, LOG_LEVEL: "info", ...extra },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const lines: Array<Record<string, unknown>> = []
  const stderr: string[] = []
  let resolveExit!: () => void
  const node: NodeProcess = { nodeId, ingressUrl, child, lines, stderr, exited: null, exit: new Promise<void>((r) => (resolveExit = r)) }
  child.on("exit", (code, signal) => {
    node.exited = { code, signal }
    resolveExit()
  })
  let partial = ""
  child.stderr!.on("data", (chunk: Buffer) => {
    const parts = (partial + chunk.toString("utf8")).split("\n")
    partial = parts.pop() ?? ""
    for (const line of parts) {
      stderr.push(line)
      if (stderr.length > 400) stderr.shift()
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>)
      } catch {
        lines.push({ message: `(not JSON) ${line}` })
      }
    }
  })
  child.stdout!.resume()
  return node
}

/** Waits for `cond`, failing early when one of `nodes` exited unexpectedly. */
export const until = async (what: string, cond: () => boolean | Promise<boolean>, ms: number, nodes: ReadonlyArray<NodeProcess> = []) => {
  const end = Date.now() + ms
  while (!(await cond())) {
    const dead = nodes.find((n) => n.exited !== null)
    if (dead) throw new Error(`${what}: node ${dead.nodeId} exited (${JSON.stringify(dead.exited)}); its last lines:\n${dead.stderr.slice(-15).join("\n")}`)
    if (Date.now() > end) {
      const tails = nodes.map((n) => `--- ${n.nodeId}:\n${n.stderr.slice(-25).join("\n")}`)
      throw new Error(`${what}: not within ${ms} ms\n${tails.join("\n")}`)
    }
    await sleep(250)
  }
}

export const isReady = (n: NodeProcess) => n.lines.some((l) => l["message"] === "botfleet node ready")

/** Which node holds each bot's lease now (null: none). */
export const holders = async (log: EventLogService, bots: ReadonlyArray<DrillBot>): Promise<Map<string, string | null>> => {
  const now = Date.now()
  const out = new Map<string, string | null>()
  await Promise.all(
    bots.map(async (b) => {
      const lease = await Effect.runPromise(log.readLease(b.botId))
      out.set(b.botId, lease !== null && lease.expiresAt > now ? lease.nodeId : null)
    })
  )
  return out
}

/** Bots held per node. */
export const heldCounts = (held: ReadonlyMap<string, string | null>): Record<string, number> => {
  const counts: Record<string, number> = {}
  for (const node of held.values()) if (node !== null) counts[node] = (counts[node] ?? 0) + 1
  return counts
}

/** SIGTERM and wait for the exit (SIGKILL after `ms`). */
export const stopNode = async (n: NodeProcess, ms = 60_000) => {
  if (n.exited !== null) return
  n.child.kill("SIGTERM")
  const timer = setTimeout(() => n.child.kill("SIGKILL"), ms)
  await n.exit
  clearTimeout(timer)
}
