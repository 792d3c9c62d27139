import { readFileSync } from "node:fs"
import { Command, CommanderError } from "commander"
import { auditCommand } from "./commands/auditCommand.js"
import { backupCommand, restoreCommand } from "./commands/backupCommand.js"
import { divergenceCommand } from "./commands/divergenceCommand.js"
import { importCommand } from "./commands/importCommand.js"
import { eventsCommand, inspectCommand, tailCommand } from "./commands/historyCommands.js"
import { dlqCommand, migrateCommand, rebuildCommand } from "./commands/opsCommands.js"
import { configCommand } from "./commands/configCommand.js"
import { runNodeCommand } from "./commands/runCommand.js"
import { replayCommand } from "./commands/replayCommand.js"
import { botsCommand } from "./commands/botsCommand.js"
import { statusCommand } from "./commands/statusCommand.js"
import { broadcastCommand } from "./commands/broadcastCommand.js"
import { dlqRetryCommand } from "./commands/dlqRetry.js"
import { ownersCommand, tokensCommand } from "./commands/apiAccessCommands.js"
import { processIo } from "./io.js"
import type { CliIo } from "./io.js"
import { EXIT_OK, EXIT_USAGE } from "./runtime.js"

/** The version of this botfleet: package.json's, read once. */
export const packageVersion = (): string =>
  (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version

/**
 * The `botfleet` command. Exit codes: 0 success, 1 failure or difference found, 2 usage error.
 * Only commands whose backing code exists are listed (docs/cli.md).
 */
export const buildProgram = (io: CliIo, setExit: (code: number) => void): Command => {
  const program = new Command("botfleet")
    .description("botfleet: an event-sourced runtime for a fleet of Telegram bots")
    .version(packageVersion())
    .showHelpAfterError("(run botfleet --help for the list of commands)")
    .configureOutput({ writeOut: (s) => io.stdout(s.replace(/\n$/, "")), writeErr: (s) => io.stderr(s.replace(/\n$/, "")) })
    .exitOverride()
    // a command's options stop at its subcommand (`config --json` vs `config set --json`)
    .enablePositionalOptions()
  for (const c of [
    configCommand(io, setExit),
    migrateCommand(io, setExit),
    rebuildCommand(io, setExit),
    importCommand(io, setExit),
    inspectCommand(io, setExit),
    tailCommand(io, setExit),
    eventsCommand(io, setExit),
    replayCommand(io, setExit),
    dlqCommand(io, setExit).addCommand(dlqRetryCommand(io, setExit)),
    botsCommand(io, setExit),
    statusCommand(io, setExit),
    runNodeCommand(io, setExit),
    backupCommand(io, setExit),
    restoreCommand(io, setExit),
    auditCommand(io, setExit),
    divergenceCommand(io, setExit),
    ownersCommand(io, setExit),
    tokensCommand(io, setExit),
    broadcastCommand(io, setExit)
  ]) {
    program.addCommand(withCliBehaviour(io, c))
  }
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
  const program = buildProgram(io, (c) => {
    code = c
  })
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
