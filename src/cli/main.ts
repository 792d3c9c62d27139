import { readFileSync } from "node:fs"
import { Command, CommanderError } from "commander"
import { processIo } from "./io.js"
import type { CliIo } from "./io.js"
import { EXIT_OK, EXIT_USAGE } from "./exitCodes.js"

/** The version of this botfleet: package.json's, read once. */
export const packageVersion = (): string =>
  (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version

type SetExit = (code: number) => void
type CommandFactory = (io: CliIo, setExit: SetExit) => Command

/*
 * The commands, each loaded only when it runs: a command module pulls in the stores, the runtime
 * and their clients (Postgres, Redis, PGlite, Effect...), which took seconds to load for every
 * start, `--version` included. In the order `--help` lists them.
 */
const commands: ReadonlyArray<readonly [name: string, load: () => Promise<CommandFactory>]> = [
  ["config", async () => (await import("./commands/configCommand.js")).configCommand],
  ["migrate", async () => (await import("./commands/opsCommands.js")).migrateCommand],
  ["rebuild", async () => (await import("./commands/opsCommands.js")).rebuildCommand],
  ["import", async () => (await import("./commands/importCommand.js")).importCommand],
  ["inspect", async () => (await import("./commands/historyCommands.js")).inspectCommand],
  ["tail", async () => (await import("./commands/historyCommands.js")).tailCommand],
  ["events", async () => (await import("./commands/historyCommands.js")).eventsCommand],
  ["replay", async () => (await import("./commands/replayCommand.js")).replayCommand],
  [
    "dlq",
    async () => {
      const [ops, retry] = await Promise.all([import("./commands/opsCommands.js"), import("./commands/dlqRetry.js")])
      return (io, setExit) => ops.dlqCommand(io, setExit).addCommand(retry.dlqRetryCommand(io, setExit))
    }
  ],
  ["bots", async () => (await import("./commands/botsCommand.js")).botsCommand],
  ["status", async () => (await import("./commands/statusCommand.js")).statusCommand],
  ["run", async () => (await import("./commands/runCommand.js")).runNodeCommand],
  ["backup", async () => (await import("./commands/backupCommand.js")).backupCommand],
  ["restore", async () => (await import("./commands/backupCommand.js")).restoreCommand],
  ["audit", async () => (await import("./commands/auditCommand.js")).auditCommand],
  ["divergence", async () => (await import("./commands/divergenceCommand.js")).divergenceCommand],
  ["owners", async () => (await import("./commands/apiAccessCommands.js")).ownersCommand],
  ["tokens", async () => (await import("./commands/apiAccessCommands.js")).tokensCommand],
  ["broadcast", async () => (await import("./commands/broadcastCommand.js")).broadcastCommand],
  ["users", async () => (await import("./commands/usersCommand.js")).usersCommand]
]

/**
 * Which commands `argv` needs: the one it names; none for a bare `--version`; all otherwise (help,
 * an unknown command: the listing and commander's suggestion need every name).
 */
export const commandsFor = (argv: ReadonlyArray<string>): ReadonlyArray<string> => {
  const first = argv[0]
  if (first !== undefined && commands.some(([name]) => name === first)) return [first]
  if (argv.length === 1 && (first === "--version" || first === "-V")) return []
  return commands.map(([name]) => name)
}

/**
 * The `botfleet` command with the commands named in `only` (default: all). Exit codes: 0 success,
 * 1 failure or difference found, 2 usage error. Only commands whose backing code exists are
 * listed (docs/cli.md).
 */
export const buildProgram = async (io: CliIo, setExit: SetExit, only: ReadonlyArray<string> = commands.map(([name]) => name)): Promise<Command> => {
  const program = new Command("botfleet")
    .description("botfleet: an event-sourced runtime for a fleet of Telegram bots")
    .version(packageVersion())
    .showHelpAfterError("(run botfleet --help for the list of commands)")
    .configureOutput({ writeOut: (s) => io.stdout(s.replace(/\n$/, "")), writeErr: (s) => io.stderr(s.replace(/\n$/, "")) })
    .exitOverride()
    // a command's options stop at its subcommand (`config --json` vs `config set --json`)
    .enablePositionalOptions()
  const factories = await Promise.all(commands.filter(([name]) => only.includes(name)).map(([, load]) => load()))
  for (const factory of factories) program.addCommand(withCliBehaviour(io, factory(io, setExit)))
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
