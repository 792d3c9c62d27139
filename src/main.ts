import { Cause, Effect, Exit, Layer } from "effect"
import { AppConfigLive } from "./config.js"
import { LoggingLive } from "./logging.js"
import { main } from "./cli/main.js"
import { serve } from "./runtime/serve.js"

/*
 * `npm start`: one botfleet node with the local Bot API sandbox and the demo fleet. With nothing
 * configured it runs embedded (PGlite under ./.data); with REDIS_URL and DATABASE_URL it uses
 * Redis and Postgres. Configuration in, JSON logs out (stdout), Ctrl-C drains and exits.
 * `botfleet run` is the same node from the CLI.
 */
// CLI commands of other processes on this DATA_DIR run in this node (cli/remote/)
const program = serve({ sandbox: true, demo: true, cli: { run: main, env: process.env } }).pipe(Effect.provide(Layer.provideMerge(LoggingLive, AppConfigLive)))

const exit = await Effect.runPromiseExit(program)
if (Exit.isFailure(exit)) {
  const failure = Cause.failureOption(exit.cause)
  process.stderr.write(`${failure._tag === "Some" ? (failure.value as Error).message : Cause.pretty(exit.cause)}\n`)
}
// whatever a library left open (sockets in TIME_WAIT, timers) must not keep a stopped node alive
process.exit(Exit.isSuccess(exit) ? 0 : 1)
