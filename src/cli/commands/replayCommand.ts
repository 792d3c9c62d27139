import { Command } from "commander"
import { Data, Effect } from "effect"
import type { BotState } from "../../actors/decider/state.js"
import type { UpdateHandler } from "../../actors/decider/updateHandler.js"
import { AppConfig } from "../../config.js"
import { EventLog } from "../../events/eventLog.js"
import { loadBotModules, moduleUrl } from "../../telegram/bots/moduleLoader.js"
import { NothingAt } from "../inspect.js"
import { printJson } from "../io.js"
import type { CliIo } from "../io.js"
import { replayEvents } from "../replay/replay.js"
import type { ReplayReport } from "../replay/replay.js"
import { CommandFailed, runCommand, UsageError } from "../runtime.js"
import { readStreamRange } from "../streamReader.js"
import { resolveBot } from "../bots/botRef.js"
import { eventLogAndSqlLayer } from "../logAndSql.js"

export class KindsModuleFailed extends Data.TaggedError("KindsModuleFailed")<{ readonly module: string; readonly reason: string }> {
  override get message() {
    return `cannot use --kinds ${this.module}: ${this.reason}\nIt must be an ES module exporting handlerFor(state): UpdateHandler.`
  }
}

/**
 * The bot kinds to replay with: those the nodes run (the built-in kind and BOT_MODULES), or a
 * module exporting `handlerFor` (to try other code against the record).
 */
const loadHandlerFor = (module: string | undefined, botModules: ReadonlyArray<string>): Effect.Effect<(s: BotState) => UpdateHandler, KindsModuleFailed> =>
  module === undefined
    ? Effect.tryPromise({
        try: async () => (await loadBotModules(botModules)).handlerFor,
        catch: (e) => new KindsModuleFailed({ module: "BOT_MODULES", reason: e instanceof Error ? e.message : String(e) })
      })
    : Effect.tryPromise({
        try: () => import(moduleUrl(module)) as Promise<{ handlerFor?: unknown }>,
        catch: (e) => new KindsModuleFailed({ module, reason: e instanceof Error ? e.message : String(e) })
      }).pipe(
        Effect.filterOrFail(
          (m): m is { handlerFor: (s: BotState) => UpdateHandler } => typeof m.handlerFor === "function",
          () => new KindsModuleFailed({ module, reason: "it does not export a handlerFor function" })
        ),
        Effect.map((m) => m.handlerFor)
      )

const version = (name: string, text: string | undefined): Effect.Effect<number | undefined, UsageError> =>
  text === undefined
    ? Effect.succeed(undefined)
    : /^\d+$/.test(text) && Number(text) >= 1
      ? Effect.succeed(Number(text))
      : Effect.fail(new UsageError({ detail: `${name} expects a stream version (a whole number from 1), got ${JSON.stringify(text)}` }))

const printReport = (io: CliIo, r: ReplayReport) => {
  io.stdout(`replayed ${r.inputsReplayed} inputs of bot ${r.botId} (versions ${r.from}..${r.to}, ${r.eventsRead} events read) through the current code`)
  if (r.erasedInputs > 0) io.stdout(`${r.erasedInputs} inputs of forgotten users ([erased]) folded as recorded, not compared`)
  if (r.identical) return io.stdout("identical: the current code makes exactly the recorded decisions")
  io.stdout(`DIVERGED: ${r.divergences.length} divergence${r.divergences.length === 1 ? "" : "s"}, first at version ${r.divergences[0]!.version}`)
  for (const d of r.divergences) {
    io.stdout(`\nv${d.version} (input v${d.inputVersion}) ${d.kind}: ${d.summary}`)
    for (const line of d.diff) io.stdout(`  ${line}`)
  }
}

/** `botfleet replay <bot> [--from v] [--to v] [--kinds module] [--json]`: exit 0 when identical, 1 on divergence. */
export const replayCommand = (io: CliIo, setExit: (code: number) => void): Command =>
  new Command("replay")
    .description("re-run a bot's recorded inputs through the current code (recorded time, no network, no writes) and report every divergence")
    .argument("<bot>", "the bot's id, or its @username")
    .option("--from <version>", "first input version to re-run (earlier events are only folded)")
    .option("--to <version>", "last version to read")
    .option("--kinds <module>", "ES module exporting handlerFor(state) for custom bot kinds (default: the built-in kind and BOT_MODULES)")
    .option("--json", "print the report as JSON")
    .action(async (bot: string, opts: { from?: string; to?: string; kinds?: string; json?: boolean }) => {
      const program = Effect.gen(function* () {
        const botId = yield* resolveBot(bot)
        const from = yield* version("--from", opts.from)
        const to = yield* version("--to", opts.to)
        if (from !== undefined && to !== undefined && from > to) {
          return yield* new UsageError({ detail: `--from ${from} is after --to ${to}: there is nothing between them to replay` })
        }
        const config = yield* AppConfig
        const handlerFor = yield* loadHandlerFor(opts.kinds, config.botModules)
        const log = yield* EventLog
        // a typo'd bot id or a range past the end is not "identical": nothing would have been compared
        const last = yield* log.streamVersion(botId)
        const beyond = [["--from", from], ["--to", to]].find(([, v]) => v !== undefined && (v as number) > last)
        if (last === 0 || beyond) return yield* new NothingAt({ botId, at: beyond ? `version ${beyond[1]} (${beyond[0]})` : "the end", last })
        const events = yield* readStreamRange(log, botId, to === undefined ? {} : { to })
        const report = yield* Effect.promise(() => replayEvents(botId, events, handlerFor, { ...(from ? { from } : {}), ...(to ? { to } : {}) }))
        if (opts.json) printJson(io, report)
        else printReport(io, report)
        if (!report.identical) return yield* new CommandFailed({ detail: `replay diverged at version ${report.divergences[0]!.version}` })
      })
      setExit(await runCommand(program, eventLogAndSqlLayer, { env: io.env, stderr: io.stderr }))
    })
