import { Effect, Exit, Logger, LogLevel, Scope } from "effect"
import { loadConfig } from "../../src/config.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makeFleetDirectory } from "../../src/runtime/fleetDirectory.js"
import { startNode } from "../../src/runtime/node.js"
import { registerBot } from "../../src/runtime/registerBot.js"
import { makeTokenVault } from "../../src/telegram/tokenVault.js"
import type { RunningNode } from "../../src/runtime/node.js"

/**
 * The settings of a production-mode fleet: its database, Redis prefix, fleet key and data folder,
 * plus whatever the test adds (TELEGRAM_API_ROOT, NODE_ID, lease timings...).
 */
export const fleetEnv = (
  fleet: { readonly db: { readonly url: string }; readonly redis: { readonly url: string; readonly prefix: string }; readonly secretKey: string; readonly dataDir: string },
  extra: Record<string, string> = {}
): Record<string, string> => ({
  DATABASE_URL: fleet.db.url,
  REDIS_URL: fleet.redis.url,
  REDIS_PREFIX: fleet.redis.prefix,
  BOTFLEET_SECRET_KEY: fleet.secretKey,
  DATA_DIR: fleet.dataDir,
  ...extra
})

/** A node started in its own scope, as `botfleet run` would (no signals: `stop` closes the scope). */
export interface TestNode {
  readonly node: RunningNode
  readonly stop: () => Promise<void>
}

export const startTestNode = async (env: Record<string, string>): Promise<TestNode> => {
  const config = await Effect.runPromise(loadConfig({ HTTP_PORT: "0", LOG_LEVEL: "warning", ...env }))
  const scope = await Effect.runPromise(Scope.make())
  const quiet = Logger.minimumLogLevel(LogLevel.Error)
  const node = await Effect.runPromise(Scope.extend(startNode(config, { sandbox: true, demo: true }), scope).pipe(Effect.provide(quiet))).catch(async (e: unknown) => {
    // what started before the failure (stores, servers) closes with the scope
    await Effect.runPromise(Scope.close(scope, Exit.void).pipe(Effect.provide(quiet)))
    throw e
  })
  return { node, stop: () => Effect.runPromise(Scope.close(scope, Exit.void).pipe(Effect.provide(quiet))) }
}

/** A user writes to a sandbox bot through the sandbox's HTTP "say" call. */
export const say = async (node: RunningNode, username: string, body: { userId: number; text: string; firstName?: string }) => {
  const res = await fetch(`${node.sandbox!.apiRoot}/sandbox/${username}/say`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body)
  })
  if (!res.ok) throw new Error(`say answered ${res.status}: ${await res.text()}`)
}

/** What the bot sent in a chat, as the sandbox's HTTP API shows it. */
export const replies = async (node: RunningNode, username: string, chatId: number): Promise<ReadonlyArray<string>> => {
  const res = await fetch(`${node.sandbox!.apiRoot}/sandbox/${username}/messages?chatId=${chatId}`)
  const body = (await res.json()) as { messages: ReadonlyArray<{ text?: string }> }
  return body.messages.map((m) => m.text ?? "")
}

export const eventTypes = async (log: EventLogService, botId: string): Promise<ReadonlyArray<string>> =>
  (await Effect.runPromise(log.readStream(botId))).map((e) => e.type)

export const count = (types: ReadonlyArray<string>, type: string) => types.filter((t) => t === type).length

/** Registers a bot through a running node's stores and fleet key, as `botfleet bots add` would (without getMe). */
export const registerOn = (node: RunningNode, bot: Parameters<typeof registerBot>[0]["bot"]) =>
  Effect.runPromise(
    registerBot({
      log: node.stores.log,
      vault: makeTokenVault(node.config.secretKey),
      directory: makeFleetDirectory(node.stores.sql),
      nodeId: node.config.nodeId,
      bot
    })
  )
