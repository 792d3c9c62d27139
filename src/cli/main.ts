import { readFileSync } from "node:fs"
import { Command, CommanderError } from "commander"
import { processIo } from "./io.js"
import type { CliIo } from "./io.js"
import { EXIT_OK, EXIT_USAGE } from "./exitCodes.js"
import { forwardingOf } from "./remote/forwarding.pure.js"

/** The version of this botfleet: package.json's, read once. */
export const packageVersion = (): string =>
  (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version

type SetExit = (code: number) => void
type CommandFactory = (io: CliIo, setExit: SetExit) => Command

/** A command as the CLI knows it before loading it: what `--help` lists, and how to load it. */
interface CommandEntry {
  readonly name: string
  /** Its line in `botfleet --help`: commander's `subcommandTerm` of the loaded command. */
  readonly term: string
  readonly description: string
  readonly load: () => Promise<CommandFactory>
}

/*
 * The commands, each loaded only when it runs: a command module pulls in the stores, the runtime
 * and their clients (Postgres, Redis, PGlite, Effect...), which took seconds to load for every
 * start. `--version`, `--help` and a usage error list or suggest commands from the term and
 * description kept here (test/cli/commandList.unit.test.ts holds them equal to the loaded
 * commands'), so they load none of it. In the order `--help` lists them.
 */
const commands: ReadonlyArray<CommandEntry> = [
  {
    name: "config",
    term: "config [options]",
    description: "print every setting in effect here and on each running node, with its source (default, env, file, live); secrets redacted",
    load: async () => (await import("./commands/configCommand.js")).configCommand
  },
  {
    name: "migrate",
    term: "migrate [options]",
    description: "apply the database migrations (sql/) not applied yet; refuses edited ones",
    load: async () => (await import("./commands/opsCommands.js")).migrateCommand
  },
  {
    name: "rebuild",
    term: "rebuild [options] <projection>",
    description: "rebuild a projection from the events archive and compare it with the live one (bots, users, messages, daily_stats, audit)",
    load: async () => (await import("./commands/opsCommands.js")).rebuildCommand
  },
  {
    name: "import",
    term: "import [options] <bot> <files...>",
    description: "import a legacy bot's JSON files (telegraf-session-local or the generic layout) into a bot's stream, losslessly",
    load: async () => (await import("./commands/importCommand.js")).importCommand
  },
  {
    name: "inspect",
    term: "inspect [options] <bot>",
    description: "print a bot's state at any point of its history, rebuilt from its events (JSON)",
    load: async () => (await import("./commands/historyCommands.js")).inspectCommand
  },
  {
    name: "tail",
    term: "tail [options] <bot>",
    description: "show a bot's events as they are appended: version, time, type, summary",
    load: async () => (await import("./commands/historyCommands.js")).tailCommand
  },
  {
    name: "events",
    term: "events [options] <bot>",
    description: "export a bot's stream to ndjson, or import one into a new bot id (to debug locally)",
    load: async () => (await import("./commands/historyCommands.js")).eventsCommand
  },
  {
    name: "replay",
    term: "replay [options] <bot>",
    description: "re-run a bot's recorded inputs through the current code (recorded time, no network, no writes) and report every divergence",
    load: async () => (await import("./commands/replayCommand.js")).replayCommand
  },
  {
    name: "dlq",
    term: "dlq",
    description: "dead-letter entries (log entries a consumer could not handle)",
    load: async () => {
      const [ops, retry] = await Promise.all([import("./commands/opsCommands.js"), import("./commands/dlqRetry.js")])
      return (io, setExit) => ops.dlqCommand(io, setExit).addCommand(retry.dlqRetryCommand(io, setExit))
    }
  },
  {
    name: "bots",
    term: "bots",
    description: "the bots of the fleet: list, add, configure, start, stop, remove",
    load: async () => (await import("./commands/botsCommand.js")).botsCommand
  },
  {
    name: "status",
    term: "status [options]",
    description: "fleet status: per bot state, version, node, crashes, last error, inbox lag; per partition projection lag and dead letters",
    load: async () => (await import("./commands/statusCommand.js")).statusCommand
  },
  {
    name: "run",
    term: "run [options]",
    description: "run a botfleet node: stores, projections, webhook ingress, the fleet's bots (and the sandbox with the demo fleet)",
    load: async () => {
      const { runNodeCommand } = await import("./commands/runCommand.js")
      // the node runs other processes' commands with this same CLI (remote/)
      return (io, setExit) => runNodeCommand(io, setExit, main)
    }
  },
  {
    name: "backup",
    term: "backup [options] <dir>",
    description: "back up the event log (events archive + Redis tail), the fleet directory and the REST API's owners and tokens (hashed) into a new folder, with checksums; or manage the backups in BACKUP_TARGET (now, list, verify, drill)",
    load: async () => (await import("./commands/backupCommand.js")).backupCommand
  },
  {
    name: "restore",
    term: "restore [options] <dir>",
    description: "restore a backup onto an empty log and database (verified first), then rebuild the projections from it",
    load: async () => (await import("./commands/backupCommand.js")).restoreCommand
  },
  {
    name: "audit",
    term: "audit",
    description: "the audit log's hash chain",
    load: async () => (await import("./commands/auditCommand.js")).auditCommand
  },
  {
    name: "divergence",
    term: "divergence",
    description: "versions where the hot log and the archive disagree (Redis lost acknowledged writes), and their repair",
    load: async () => (await import("./commands/divergenceCommand.js")).divergenceCommand
  },
  {
    name: "owners",
    term: "owners",
    description: "owners of bots who may use the REST API (their tokens: botfleet tokens)",
    load: async () => (await import("./commands/apiAccessCommands.js")).ownersCommand
  },
  {
    name: "tokens",
    term: "tokens",
    description: "REST API tokens (Authorization: Bearer): create (shown once), list, revoke",
    load: async () => (await import("./commands/apiAccessCommands.js")).tokensCommand
  },
  {
    name: "broadcast",
    term: "broadcast",
    description: "send one message to a segment of a bot's users, within Telegram's limits: create, list, pause, resume, cancel",
    load: async () => (await import("./commands/broadcastCommand.js")).broadcastCommand
  },
  {
    name: "users",
    term: "users",
    description: "a bot's users: tag, untag (tags select broadcast segments: tag=vip), forget (GDPR erasure)",
    load: async () => (await import("./commands/usersCommand.js")).usersCommand
  }
]

/**
 * Which commands `argv` needs loaded: the one it names (`botfleet <command> ...`, `botfleet help
 * <command>`); none otherwise: `--version`, `--help` and an unknown command (whose suggestion needs
 * only the names) are answered from the list above.
 */
export const commandsFor = (argv: ReadonlyArray<string>): ReadonlyArray<string> => {
  const named = argv[0] === "help" ? argv[1] : argv[0]
  return commands.some(({ name }) => name === named) ? [named!] : []
}

/** Each command's line in `botfleet --help`, in order: name, term and description. */
export const commandSummaries = (): ReadonlyArray<readonly [name: string, term: string, description: string]> =>
  commands.map(({ name, term, description }) => [name, term, description])

/**
 * The `botfleet` command with the commands named in `only` (default: all) loaded, every other one
 * standing in by its name and description (all the listing and a suggestion need). Exit codes:
 * 0 success, 1 failure or difference found, 2 usage error. Only commands whose backing code exists
 * are listed (docs/cli.md).
 */
export const buildProgram = async (io: CliIo, setExit: SetExit, only: ReadonlyArray<string> = commands.map(({ name }) => name)): Promise<Command> => {
  const terms = new Map(commands.map(({ name, term }) => [name, term]))
  const program = new Command("botfleet")
    .description("botfleet: an event-sourced runtime for a fleet of Telegram bots")
    .version(packageVersion())
    .showHelpAfterError("(run botfleet --help for the list of commands)")
    .configureOutput({ writeOut: (s) => io.stdout(s.replace(/\n$/, "")), writeErr: (s) => io.stderr(s.replace(/\n$/, "")) })
    .configureHelp({ subcommandTerm: (c) => terms.get(c.name()) ?? c.name() })
    .exitOverride()
    // a command's options stop at its subcommand (`config --json` vs `config set --json`)
    .enablePositionalOptions()
  const built = await Promise.all(
    commands.map(async (entry) => (only.includes(entry.name) ? (await entry.load())(io, setExit) : new Command(entry.name).description(entry.description)))
  )
  for (const c of built) program.addCommand(withCliBehaviour(io, c))
  return program
}

/**
 * Every command, nested ones included, reports through `io` and throws instead of exiting, so a
 * usage error anywhere ends with exit code 2 (commander would otherwise exit 1 from a subcommand).
 */
const withCliBehaviour = (io: CliIo, c: Command): Command => {
  c.exitOverride().configureOutput({ writeOut: (s) => io.stdout(s.replace(/\n$/, "")), writeErr: (s) => io.stderr(s.replace(/\n$/, "")) })
  for (const sub of c.commands) withCliBehaviour(io, sub)
  return c
}

/** Runs the CLI on `argv` (without node and script) and resolves with the exit code. */
export const main = async (argv: ReadonlyArray<string>, io: CliIo = processIo()): Promise<number> => {
  // beside a running embedded node, the node runs the command (remote/remote.ts); loaded only for
  // commands that read the data folder, so `--version` and `--help` stay light
  if (io.host === undefined && forwardingOf(argv)._tag !== "Local") {
    const forwarded = await (await import("./remote/remote.js")).forwardToNode(argv, io)
    if (forwarded !== null) return forwarded
  }
  let code = EXIT_OK
  const program = await buildProgram(
    io,
    (c) => {
      code = c
    },
    commandsFor(argv)
  )
  try {
    await program.parseAsync([...argv], { from: "user" })
    return code
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version end with exit code 0; anything else commander refuses is a usage error
      return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE
    }
    throw e
  }
}
