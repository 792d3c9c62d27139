import { Command } from "commander"
import { serve } from "../../runtime/serve.js"
import type { CliIo } from "../io.js"
import type { NodeCli } from "../../runtime/nodeApi.js"
import { runCommand } from "../runtime.js"

/**
 * `botfleet run [--no-sandbox] [--no-demo]`: the runtime (what `npm start` runs). Embedded mode
 * when neither DATABASE_URL nor REDIS_URL is set. Logs are JSON lines on stderr; the banner (where
 * to chat) goes to stdout. SIGINT/SIGTERM drain the bots and exit 0.
 */
export const runNodeCommand = (io: CliIo, setExit: (code: number) => void, cli?: NodeCli["run"]): Command =>
  new Command("run")
    .description("run a botfleet node: stores, projections, webhook ingress, the fleet's bots (and the sandbox with the demo fleet)")
    .option("--no-sandbox", "do not start the local Bot API sandbox (nor the demo fleet)")
    .option("--no-demo", "start the sandbox but do not seed or run the demo fleet")
    .action(async (opts: { sandbox: boolean; demo: boolean }) => {
      // CLI commands of other processes on this DATA_DIR run in this node (cli/remote/)
      const program = serve({ sandbox: opts.sandbox, demo: opts.sandbox && opts.demo, ...(cli ? { cli: { run: cli, env: io.env } } : {}) }, (line) => io.stdout(line))
      setExit(await runCommand(program, undefined, { env: io.env, stderr: io.stderr }))
    })
