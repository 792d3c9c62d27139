import { Command, Option as Opt } from "commander"
import { Effect } from "effect"
import { EventLog } from "../../events/eventLog.js"
import type { RecordedEvent } from "../../events/schema/envelope.js"
import { redact } from "../../logging.js"
import { exportEvents, importEvents } from "../eventsTransfer.js"
import { formatEventLine, matches } from "../eventText.pure.js"
import type { EventFilter } from "../eventText.pure.js"
import { inspectBot, NothingAt, parseAt } from "../inspect.js"
import { printJson } from "../io.js"
import { makeProgress } from "../progress.js"
import type { CliIo } from "../io.js"
import { runCommand, UsageError } from "../runtime.js"
import { lastMatching } from "../streamReader.js"
import { eventLogAndSqlLayerFor } from "../hosted.js"
import { resolveBot } from "../bots/botRef.js"
import { checkBotId } from "./importCommand.js"

type SetExit = (code: number) => void

/** `botfleet inspect <bot> [--at <version|time>]`: the state at a point of history, as JSON. */
export const inspectCommand = (io: CliIo, setExit: SetExit): Command =>
  new Command("inspect")
    .description("print a bot's state at any point of its history, rebuilt from its events (JSON)")
    .argument("<bot>", "the bot's id, or its @username")
    .option("--at <version|time>", "a stream version (e.g. 120) or a time (ISO-8601); default: now")
    .action(async (bot: string, opts: { at?: string }) => {
      const program = Effect.gen(function* () {
        const botId = yield* resolveBot(bot)
        const at = yield* parseAt(opts.at)
        printJson(io, redact(yield* inspectBot(botId, at)))
      })
      setExit(await runCommand(program, eventLogAndSqlLayerFor(io), { env: io.env, stderr: io.stderr }))
    })

const parseVersion = (name: string, text: string | undefined): Effect.Effect<number | undefined, UsageError> =>
  text === undefined
    ? Effect.succeed(undefined)
    : /^\d+$/.test(text) && Number(text) >= 1
      ? Effect.succeed(Number(text))
      : Effect.fail(new UsageError({ detail: `${name} expects a stream version (a whole number from 1), got ${JSON.stringify(text)}` }))

const parseMs = (text: string): Effect.Effect<number, UsageError> =>
  /^\d+$/.test(text) && Number(text) >= 50 ? Effect.succeed(Number(text)) : Effect.fail(new UsageError({ detail: `--interval expects milliseconds (at least 50), got ${JSON.stringify(text)}` }))

const TAIL_PAGE = 1000

/**
 * `botfleet tail <bot>`: the bot's events as readable lines (or ndjson with --json), in version
 * order, following new ones until interrupted. Starts with the last 10 events that pass the
 * filters (looking as far back as it takes, through the archive), or with every one that passes
 * from --from on. An unknown bot, or --from beyond the stream's next version, is an error.
 */
export const tailCommand = (io: CliIo, setExit: SetExit, stop: Effect.Effect<void> = io.closed ? Effect.promise(() => io.closed!) : Effect.never): Command =>
  new Command("tail")
    .description("show a bot's events as they are appended: version, time, type, summary")
    .argument("<bot>", "the bot's id, or its @username")
    .option("--from <version>", "first version to show (default: the last 10 events that pass the filters)")
    .option("--type <types>", "only these event types (comma-separated)")
    .option("--chat <chatId>", "only events about this chat")
    .option("--no-follow", "print what is there and exit")
    .option("--interval <ms>", "how often to look for new events", "500")
    .option("--json", "one JSON envelope per line (ndjson)")
    .action(async (bot: string, opts: { from?: string; type?: string; chat?: string; follow: boolean; interval: string; json?: boolean }) => {
      const program = Effect.gen(function* () {
        const botId = yield* resolveBot(bot)
        const from = yield* parseVersion("--from", opts.from)
        const interval = yield* parseMs(opts.interval)
        const filter: EventFilter = {
          ...(opts.type ? { types: opts.type.split(",").map((t) => t.trim()).filter(Boolean) } : {}),
          ...(opts.chat !== undefined ? { chat: opts.chat } : {})
        }
        const log = yield* EventLog
        const last = yield* log.streamVersion(botId)
        // nothing to show is an answer only for a bot that exists and a range that does
        if (last === 0) return yield* new NothingAt({ botId, at: "the end", last })
        if (from !== undefined && from > last + 1) return yield* new NothingAt({ botId, at: `version ${from} (--from)`, last })
        const keep = (e: RecordedEvent) => matches(filter, e)
        const show = (e: RecordedEvent) => io.stdout(opts.json ? JSON.stringify(redact(e)) : formatEventLine(e))
        let next = from ?? last + 1
        if (from === undefined) for (const e of yield* lastMatching(log, botId, keep, last, 10)) show(e)
        /** Everything from `next` on, page by page, in version order. */
        const poll = Effect.gen(function* () {
          for (;;) {
            const page = [...(yield* log.readStream(botId, { from: next, limit: TAIL_PAGE }))].sort((a, b) => a.version - b.version)
            for (const e of page) {
              if (keep(e)) show(e)
              next = e.version + 1
            }
            if (page.length < TAIL_PAGE) return
          }
        })
        yield* poll
        if (opts.follow) yield* Effect.race(Effect.forever(Effect.zipRight(Effect.sleep(interval), poll)), stop)
      })
      setExit(await runCommand(program, eventLogAndSqlLayerFor(io), { env: io.env, stderr: io.stderr }))
    })

/** `botfleet events <bot> --export file.ndjson | --import file.ndjson`. */
export const eventsCommand = (io: CliIo, setExit: SetExit): Command =>
  new Command("events")
    .description("export a bot's stream to ndjson, or import one into a new bot id (to debug locally)")
    .argument("<bot>", "the bot's id, or its @username")
    .addOption(new Opt("--export <file>", "write the stream to this new file").conflicts("import"))
    .addOption(new Opt("--import <file>", "append the file's events to this bot, which must have none yet"))
    .option("--json", "print the result as JSON")
    .action(async (bot: string, opts: { export?: string; import?: string; json?: boolean }) => {
      const progress = makeProgress(io, opts.json !== true)
      const program = Effect.gen(function* () {
        // an import makes a new bot: its id as given; an export reads an existing one, by id or name
        const botId = opts.import !== undefined && opts.export === undefined ? yield* checkBotId(bot) : yield* resolveBot(bot)
        if (opts.export !== undefined) {
          const n = yield* exportEvents(botId, opts.export, (d, t) => progress.update("export", d, t)).pipe(Effect.ensuring(Effect.sync(() => progress.stop())))
          if (opts.json) printJson(io, { botId, exported: n, file: opts.export })
          else io.stdout(`exported ${n} events of bot ${botId} to ${opts.export}`)
        } else if (opts.import !== undefined) {
          const n = yield* importEvents(botId, opts.import)
          if (opts.json) printJson(io, { botId, imported: n, file: opts.import })
          else io.stdout(`imported ${n} events into bot ${botId} from ${opts.import}`)
        } else return yield* new UsageError({ detail: "say what to do: --export <file> or --import <file>" })
      })
      setExit(await runCommand(program, eventLogAndSqlLayerFor(io), { env: io.env, stderr: io.stderr }))
    })
