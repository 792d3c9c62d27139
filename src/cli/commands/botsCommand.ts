import { readFile } from "node:fs/promises"
import { Command, InvalidArgumentError, Option as CliOption } from "commander"
import { Data, Effect, Option, Redacted } from "effect"
import { AppConfig } from "../../config.js"
import type { BotfleetConfig } from "../../config.js"
import { isReservedId } from "../../projections/mapping/fleet.js"
import { parseOwnerId } from "../../events/ownerId.js"
import { makeFleetDirectory } from "../../runtime/fleetDirectory.js"
import { sendControl } from "../../runtime/control.js"
import { registerBot } from "../../runtime/registerBot.js"
import type { NodeStores } from "../../runtime/stores.js"
import type { EventLogService } from "../../events/eventLog.js"
import { applyOnNode, storesFor } from "../hosted.js"
import { makeTokenVault, telegramIdOfToken } from "../../telegram/tokenVault.js"
import { botRows, foldBot, unlistBot } from "../bots/botRows.js"
import type { BotRow } from "../bots/botRows.js"
import { applyOrAskNode, cliLeaseOwner, UnknownBot } from "../bots/lifecycle.js"
import type { Applied } from "../bots/lifecycle.js"
import { readToken } from "../bots/token.js"
import { resolveBotRef } from "../bots/botRef.js"
import { makeSecretBox, sealApiKeyInPatch } from "../../ai/secretBox.js"
import { printJson, printTable } from "../io.js"
import type { CliIo } from "../io.js"
import { CommandFailed, runCommand, UsageError } from "../runtime.js"

type SetExit = (code: number) => void

/*
 * Loaded by the subcommands that use them, not with this module: `bots list` (a read, which ops
 * run often) needs neither the Bot API client (undici) nor the bot kinds' configuration schemas
 * (telegraf), which cost its start ~200 ms.
 */
const registration = () => Effect.promise(() => import("../../telegram/registration.js"))
const configuring = () => Effect.promise(() => import("../bots/configure.js"))

/** The bot id is already taken (its stream has events). */
export class BotExists extends Data.TaggedError("BotExists")<{ readonly botId: string; readonly version: number }> {
  override get message() {
    return `bot ${this.botId} already exists (its stream is at version ${this.version}): choose another id, or change it with botfleet bots configure`
  }
}

/** Runs `body` with the mode's stores (migrated), closed when it ends; inside a node, the node's (hosted.ts). */
const withStores = <A, E>(io: CliIo, body: (stores: NodeStores, config: BotfleetConfig) => Effect.Effect<A, E>) =>
  Effect.scoped(Effect.gen(function* () {
    const config = yield* AppConfig
    const stores = yield* storesFor(io, config)
    return yield* body(stores, config)
  }))

/**
 * The change through the bot's actor when the command runs inside the node that runs the bot
 * (embedded mode: the node holds its lease); null otherwise (the CLI's own way applies).
 */
const onHostingNode = (io: CliIo, log: EventLogService, config: BotfleetConfig, botId: string, command: Parameters<typeof applyOnNode>[3], recorded: string) =>
  io.host === undefined ? Effect.succeed(null) : applyOnNode(io.host.node(), log, botId, command, recorded, config.mode === "embedded" ? "embedded" : config.nodeId)

const run = async (io: CliIo, setExit: SetExit, program: Effect.Effect<unknown, unknown, AppConfig>) =>
  setExit(await runCommand(program, undefined, { env: io.env, stderr: io.stderr }))

/** One table line per bot (the --json form keeps every field). */
export const printBotRows = (io: CliIo, rows: ReadonlyArray<BotRow>, json: boolean): void => {
  if (json) return printJson(io, rows)
  if (rows.length === 0) return io.stdout("no bots in the fleet directory (add one with botfleet bots add)")
  printTable(
    io,
    rows.map((r) => ({
      bot: r.botId,
      // the name the banner and the chat page show beside the id (a bot's Telegram username, which
      // ends in "bot", with its @; a name given with --name as it is)
      name: r.name === null ? "" : /^[A-Za-z][A-Za-z0-9_]{1,29}bot$/i.test(r.name) ? `@${r.name}` : r.name,
      state: r.state,
      version: r.version,
      mode: r.mode ?? "",
      node: r.node ?? "-",
      crashes: r.crashes,
      "inbox lag": r.inboxLag < 0 ? "?" : r.inboxLag,
      "last error": (r.lastError ?? "").slice(0, 60)
    }))
  )
}

/** The control channel's Redis (production mode); null in embedded mode. */
const controlOf = (config: BotfleetConfig, timeoutMs?: number) =>
  Option.isSome(config.redisUrl) ? { redisUrl: Redacted.value(config.redisUrl.value), prefix: config.redisPrefix, ...(timeoutMs !== undefined ? { timeoutMs } : {}) } : null

const waitOption = () =>
  new CliOption("--wait <ms>", "while a node runs the bot: how long to wait for that node to confirm").default(15_000).argParser((v) => {
    const n = Number(v)
    if (!Number.isInteger(n) || n < 100 || n > 600_000) throw new InvalidArgumentError("expected milliseconds, an integer from 100 to 600000")
    return n
  })

/**
 * Tells running nodes to supervise a bot now (production mode; inside the embedded node, that
 * node); they would otherwise at their next start.
 */
const announceStart = (io: CliIo, config: BotfleetConfig, botId: string) => {
  const hosting = io.host?.node() ?? null
  if (hosting !== null) return Effect.as(hosting.startBot(botId), 1)
  const control = controlOf(config)
  return control === null
    ? Effect.succeed(0)
    : sendControl(control, { _tag: "StartBot", botId }).pipe(
        Effect.map((r) => r.heardBy),
        Effect.orElseSucceed(() => 0)
      )
}

const startedBy = (nodes: number) =>
  nodes > 0 ? `${nodes} running node${nodes === 1 ? "" : "s"} told to start it now` : "nodes start it at their next start"

/** Tells running nodes (production mode) without waiting for an answer. */
const tellNodes = (config: BotfleetConfig, request: Parameters<typeof sendControl>[1]) => {
  const control = controlOf(config)
  return control === null ? Effect.void : sendControl({ ...control, awaitReply: false }, request).pipe(Effect.ignore)
}

const printApplied = (io: CliIo, a: Applied, json: boolean, what: string): void => {
  if (json) return printJson(io, a)
  const by = a.node !== undefined ? ` by node ${a.node}` : ""
  io.stdout(a.events.length === 0 ? `bot ${a.botId}: ${what}: nothing to record (already so), version ${a.version}` : `bot ${a.botId}: ${what}: recorded ${a.events.join(", ")}${by}, now at version ${a.version}`)
}

/**
 * Subcommands need their own exit override and output (commander does not pass them down from the
 * parent): a usage error then ends as exit code 2 with its text on the CLI's stderr, never process.exit.
 */
export const asSubcommand = (io: CliIo, c: Command): Command =>
  c.exitOverride().configureOutput({ writeOut: (s) => io.stdout(s.replace(/\n$/, "")), writeErr: (s) => io.stderr(s.replace(/\n$/, "")) })

const collect = (value: string, previous: Array<string>) => [...previous, value]

/** `botfleet bots list|add|configure|start|stop|remove`. */
export const botsCommand = (io: CliIo, setExit: SetExit): Command => {
  const bots = new Command("bots").description("the bots of the fleet: list, add, configure, start, stop, remove")

  bots.addCommand(
    asSubcommand(io, new Command("list")
      .description("per bot of the fleet directory: state, version, node, crashes, last error, inbox lag")
      .option("--json", "print as JSON")
      .action(async (opts: { json?: boolean }) => {
        await run(io, setExit, withStores(io, (s) => Effect.map(botRows({ log: s.log, inbox: s.inbox, sql: s.sql }), (rows) => printBotRows(io, rows, opts.json === true))))
      })
  ))

  bots.addCommand(
    asSubcommand(io, new Command("add")
      .description("register a bot: its token (stdin or BOT_TOKEN, never an argument) is checked with getMe and stored sealed")
      .argument("<botId>", "the bot's id in the fleet")
      .requiredOption("--owner <id>", "the owner's id")
      .option("--name <name>", "display name (default: the Telegram username)")
      .option("--kind <kind>", "the bot's kind (its update handler)", "builtin")
      .addOption(new CliOption("--mode <mode>", "how updates arrive").choices(["polling", "webhook"]).default("polling"))
      .option("--api-root <url>", "Bot API root to check the token against (default: TELEGRAM_API_ROOT)")
      .option("--json", "print the result as JSON")
      .action(async (botId: string, opts: { owner: string; name?: string; kind: string; mode: "polling" | "webhook"; apiRoot?: string; json?: boolean }) => {
        // refused before any store is opened or the token asked for
        const owner = Effect.mapError(parseOwnerId(opts.owner), (e) => new UsageError({ detail: `--owner: ${e.message}` }))
        const program = Effect.zipRight(owner, withStores(io, (s, config) =>
          Effect.gen(function* () {
            if (isReservedId(botId)) return yield* new UsageError({ detail: `bot id ${JSON.stringify(botId)}: ids starting with "_" are reserved for the fleet's own streams` })
            const version = yield* s.log.streamVersion(botId)
            if (version > 0) return yield* new BotExists({ botId, version })
            const token = yield* readToken(io, botId)
            const vault = makeTokenVault(config.secretKey)
            const { checkAndSealToken } = yield* registration()
            const me = yield* checkAndSealToken({ botId, token, vault, apiRoot: opts.apiRoot ?? config.telegramApiRoot })
            const registered = yield* registerBot({
              log: s.log,
              vault,
              directory: makeFleetDirectory(s.sql),
              nodeId: cliLeaseOwner(),
              bot: { botId, ownerId: opts.owner, name: opts.name ?? me.username, kind: opts.kind, mode: opts.mode, token, config: {} }
            })
            if (!registered) return yield* new BotExists({ botId, version: yield* s.log.streamVersion(botId) })
            const nodes = yield* announceStart(io, config, botId)
            const result = { botId, registered, telegramId: me.telegramId, username: me.username, mode: opts.mode, nodesTold: nodes }
            if (opts.json) printJson(io, result)
            else io.stdout(`bot ${botId} added (Telegram @${me.username}, id ${me.telegramId}, ${opts.mode}); ${startedBy(nodes)}`)
          })
        ))
        await run(io, setExit, program)
      })
  ))

  bots.addCommand(
    asSubcommand(io, new Command("configure")
      .description("change a bot's configuration with a JSON merge patch (BotConfigChanged), checked against its kind's schema; --show prints the configuration in effect")
      .argument("<bot>", "the bot's id, or its @username")
      .option("--set <key=value>", "set one key, a.b=value for a nested one (value parsed as JSON when it parses; null deletes); repeatable", collect, [])
      .option("--file <patch.json>", "a JSON merge patch (RFC 7386) to apply")
      .option("--show", "print the configuration in effect (recorded, and with the kind's defaults) instead")
      .addOption(waitOption())
      .option("--json", "print the result as JSON")
      .action(async (ref: string, opts: { set: Array<string>; file?: string; show?: boolean; wait: number; json?: boolean }) => {
        const program = Effect.gen(function* () {
          const { checkPatch, parseSets, showConfig } = yield* configuring()
          if (opts.show === true) {
            if (opts.set.length > 0 || opts.file !== undefined) return yield* new UsageError({ detail: "--show prints the configuration: give it alone" })
            const [botId, shown] = yield* withStores(io, (s, config) =>
              Effect.flatMap(resolveBotRef(s, ref), (botId) => Effect.map(showConfig({ log: s.log, botId, botModules: config.botModules }), (shown) => [botId, shown] as const))
            )
            if (opts.json) return printJson(io, shown)
            io.stdout(`bot ${botId} (kind ${shown.kind}, version ${shown.version}${shown.checked ? "" : ", no schema declared: not checked"}), configuration in effect:`)
            return io.stdout(JSON.stringify(shown.effective, null, 2))
          }
          if ((opts.set.length === 0) === (opts.file === undefined)) return yield* new UsageError({ detail: "give either --set key=value (one or more) or --file patch.json" })
          const patch: unknown =
            opts.file !== undefined
              ? yield* Effect.tryPromise({
                  try: async () => JSON.parse(await readFile(opts.file!, "utf8")) as unknown,
                  catch: (e) => new UsageError({ detail: `--file ${opts.file}: ${e instanceof Error ? e.message : String(e)}` })
                })
              : yield* parseSets(opts.set)
          const applied = yield* withStores(io, (s, config) => Effect.flatMap(resolveBotRef(s, ref), (botId) => {
            // a model API key is recorded sealed, never in clear (src/ai/secretBox.ts)
            const sealed = sealApiKeyInPatch(patch, botId, makeSecretBox(config.secretKey))
            // checked before anything is sent or recorded: a refused config changes nothing
            return checkPatch({ log: s.log, botId, patch, botModules: config.botModules }).pipe(
              Effect.zipRight(onHostingNode(io, s.log, config, botId, { _tag: "ChangeConfig", patch: sealed }, "BotConfigChanged")),
              Effect.flatMap((here): Effect.Effect<Applied, unknown> =>
                here !== null
                  ? Effect.succeed(here)
                  : applyOrAskNode({
                      log: s.log,
                      botId,
                      actor: "ops:cli",
                      input: () => ({ _tag: "ChangeConfig", patch: sealed, at: new Date().toISOString() }),
                      control: controlOf(config, opts.wait),
                      request: { _tag: "Configure", botId, patch: sealed }
                    })
              )
            )
          }))
          printApplied(io, applied, opts.json === true, "configure")
        })
        await run(io, setExit, program)
      })
  ))

  bots.addCommand(
    asSubcommand(io, new Command("start")
      .description("list a stopped or failed bot in the fleet directory again: nodes start it at their next start")
      .argument("<bot>", "the bot's id, or its @username")
      .option("--json", "print the result as JSON")
      .action(async (ref: string, opts: { json?: boolean }) => {
        const program = withStores(io, (s, config) =>
          Effect.gen(function* () {
            const botId = yield* resolveBotRef(s, ref)
            const rows = yield* botRows({ log: s.log, inbox: s.inbox, sql: s.sql, only: [botId] })
            const row = rows[0]!
            if (row.version === 0) return yield* new UnknownBot({ botId })
            if (row.state === "removed") return yield* new CommandFailed({ detail: `bot ${botId} is removed: it cannot be started again (add it under a new id)` })
            yield* makeFleetDirectory(s.sql).add(botId)
            const nodes = row.node !== null ? 0 : yield* announceStart(io, config, botId)
            if (opts.json) printJson(io, { botId, listed: true, state: row.state, node: row.node, nodesTold: nodes })
            else io.stdout(row.node !== null ? `bot ${botId} is already running on node ${row.node}` : `bot ${botId} is listed in the fleet: ${startedBy(nodes)}`)
          })
        )
        await run(io, setExit, program)
      })
  ))

  bots.addCommand(
    asSubcommand(io, new Command("rotate-token")
      .description("give a bot a new token (stdin or BOT_TOKEN, never an argument): checked with getMe to be the same Telegram bot, sealed, recorded as BotTokenRotated; a bot stopped for a revoked token runs again")
      .argument("<bot>", "the bot's id, or its @username")
      .option("--api-root <url>", "Bot API root to check the token against (default: TELEGRAM_API_ROOT)")
      .addOption(waitOption())
      .option("--json", "print the result as JSON")
      .action(async (ref: string, opts: { apiRoot?: string; wait: number; json?: boolean }) => {
        const program = withStores(io, (s, config) =>
          Effect.gen(function* () {
            const botId = yield* resolveBotRef(s, ref)
            const { state, version } = yield* foldBot(s.log, botId)
            if (version === 0) return yield* new UnknownBot({ botId })
            if (state.status === "removed") return yield* new CommandFailed({ detail: `bot ${botId} is removed: add it under a new id` })
            const vault = makeTokenVault(config.secretKey)
            // the same Telegram bot: its id is the part of the old token before the colon
            const current = state.tokenCiphertext === null ? null : yield* Effect.either(vault.open(botId, state.tokenCiphertext))
            const expected = current?._tag === "Right" ? Number(telegramIdOfToken(current.right)) : undefined
            const token = yield* readToken(io, botId)
            const { checkAndSealToken } = yield* registration()
            const checked = yield* checkAndSealToken({ botId, token, vault, apiRoot: opts.apiRoot ?? config.telegramApiRoot, ...(expected ? { expectedTelegramId: expected } : {}) })
            const here = yield* onHostingNode(io, s.log, config, botId, { _tag: "RotateToken", tokenCiphertext: checked.tokenCiphertext }, "BotTokenRotated")
            if (here !== null) {
              // its poller or webhook still hold the old token: the node runs it again with the new one
              const hosting = io.host!.node()!
              yield* hosting.supervisor.stopBot(botId)
              yield* hosting.startBot(botId)
            }
            const applied: Applied = here ?? (yield* applyOrAskNode({
              log: s.log,
              botId,
              actor: "owner:cli",
              input: () => ({ _tag: "RotateToken", tokenCiphertext: checked.tokenCiphertext, at: new Date().toISOString() }),
              control: controlOf(config, opts.wait),
              request: { _tag: "RotateToken", botId, tokenCiphertext: checked.tokenCiphertext }
            }))
            // recorded here (no node ran it, e.g. stopped on the revoked token): listed bots run again
            const rows = yield* botRows({ log: s.log, inbox: s.inbox, sql: s.sql, only: [botId] })
            const nodesTold = !("node" in applied) && rows[0]?.inListedFleet === true ? yield* announceStart(io, config, botId) : 0
            if (opts.json) printJson(io, { ...applied, telegramId: checked.telegramId, username: checked.username, nodesTold })
            else {
              printApplied(io, applied, false, "rotate-token")
              if (nodesTold > 0) io.stdout(startedBy(nodesTold))
            }
          })
        )
        await run(io, setExit, program)
      })
  ))

  const lifecycle = (name: "stop" | "remove", description: string) =>
    asSubcommand(io, new Command(name)
      .description(description)
      .argument("<bot>", "the bot's id, or its @username")
      .option("--reason <text>", "why (recorded)", `ops: botfleet bots ${name}`)
      .addOption(waitOption())
      .option("--json", "print the result as JSON")
      .action(async (ref: string, opts: { reason: string; wait: number; json?: boolean }) => {
        const program = withStores(io, (s, config) =>
          Effect.gen(function* () {
            const botId = yield* resolveBotRef(s, ref)
            const command = name === "stop" ? ({ _tag: "Stop", reason: opts.reason } as const) : ({ _tag: "Remove", reason: opts.reason } as const)
            const here = yield* onHostingNode(io, s.log, config, botId, command, name === "stop" ? "BotStopped" : "BotRemoved")
            const applied: Applied = here ?? (yield* applyOrAskNode({
              log: s.log,
              botId,
              actor: "ops:cli",
              input: (state, owner) =>
                name === "stop"
                  ? { _tag: "Stop", nodeId: state.node?.nodeId ?? owner, reason: opts.reason, at: new Date().toISOString() }
                  : { _tag: "Remove", reason: opts.reason, at: new Date().toISOString() },
              control: controlOf(config, opts.wait),
              request: { _tag: name === "stop" ? "Stop" : "Remove", botId, reason: opts.reason }
            }))
            // taken out of the directory after the fact is recorded: a failure in between leaves it listed, never lost
            yield* unlistBot(s.sql, botId)
            // the hosting node supervises it no more either (a passivated bot would wake on its next update)
            const hosting = io.host?.node() ?? null
            if (hosting !== null) yield* hosting.supervisor.stopBot(botId)
            // recorded here (no node held the lease: the bot was passivated, or its node is gone):
            // nodes that still supervise it stop doing so, or its next update would wake it
            if (!("node" in applied)) yield* tellNodes(config, { _tag: name === "stop" ? "Stop" : "Remove", botId, reason: opts.reason })
            printApplied(io, applied, opts.json === true, name)
          })
        )
        await run(io, setExit, program)
      }))

  bots.addCommand(lifecycle("stop", "record that a bot no longer runs (BotStopped) and unlist it (a running bot is stopped by its node, asked over the control channel)"))
  bots.addCommand(lifecycle("remove", "remove a bot for good (BotRemoved) and unlist it (a running bot is removed by its node)"))
  return bots
}
