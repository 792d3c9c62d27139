import { sqlLayerFor } from "../hosted.js"
import { Command } from "commander"
import { Effect, Redacted } from "effect"
import { runVerification, describeBreak } from "../../audit/periodic.js"
import { AppConfig } from "../../config.js"
import { Sql } from "../../db/sql.js"
import { parseOwnerId } from "../../events/ownerId.js"
import { anchorKeyFrom } from "../../projections/auditChain.js"
import { printJson, printTable } from "../io.js"
import { makeProgress } from "../progress.js"
import type { CliIo } from "../io.js"
import { CommandFailed, runCommand, UsageError } from "../runtime.js"
import { asSubcommand } from "./botsCommand.js"

type SetExit = (code: number) => void

/**
 * `botfleet audit verify [--owner <id>] [--anchor] [--json]`: checks the audit hash chain (every
 * row against its archived event, the row before it, its own content and the owner's signed
 * anchors) and reports the first broken link of each owner; exit 1 when one is broken.
 * `--anchor` also anchors the verified owners and records the run (as a node's periodic
 * verification does), so `botfleet status` shows it.
 */
export const auditCommand = (io: CliIo, setExit: SetExit): Command =>
  new Command("audit").description("the audit log's hash chain").addCommand(
    asSubcommand(
      io,
      new Command("verify")
        .description("verify the audit hash chain and its anchors; report the first broken link (owner, bot, position, expected vs found) and exit 1")
        .option("--owner <id>", "verify this owner only (default: every owner)")
        .option("--anchor", "anchor the verified owners' lane heads and record the run (what a node's periodic verification does)")
        .option("--json", "print the report as JSON")
        .action(async (opts: { owner?: string; anchor?: boolean; json?: boolean }) => {
          const progress = makeProgress(io, opts.json !== true)
          const program = Effect.gen(function* () {
            const owners =
              opts.owner === undefined
                ? undefined
                : [yield* Effect.mapError(parseOwnerId(opts.owner), (e) => new UsageError({ detail: `--owner: ${e.message}` }))]
            const config = yield* AppConfig
            const sql = yield* Sql
            const { report, anchors } = yield* runVerification({
              sql,
              anchorKey: anchorKeyFrom(Redacted.value(config.secretKey)),
              nodeId: `cli-${config.nodeId}`.slice(0, 64),
              anchor: opts.anchor === true,
              record: opts.anchor === true,
              ...(owners ? { ownerIds: owners } : {}),
              onProgress: (done, total) => progress.update("verify", done, total)
            }).pipe(Effect.ensuring(Effect.sync(() => progress.stop())))
            if (opts.json) printJson(io, { ...report, anchorsWritten: anchors })
            else {
              if (report.owners.length === 0) io.stdout("no audit rows and no anchors: nothing to verify")
              printTable(
                io,
                report.owners.map((o) => ({
                  owner: o.ownerId,
                  rows: o.rows,
                  lanes: o.heads.length,
                  anchors: o.anchors,
                  chain: o.break === null ? "ok" : `BROKEN: ${o.break.what} (bot ${o.break.botId ?? "-"}, position ${o.break.position})`
                }))
              )
              if (anchors.length > 0) io.stdout(`anchored ${anchors.length} owner${anchors.length === 1 ? "" : "s"}: ${anchors.map((a) => `${a.ownerId} #${a.seq}`).join(", ")}`)
              io.stdout(report.ok ? `the audit chain holds: ${report.rows} rows of ${report.owners.length} owners verified` : `first broken link: ${describeBreak(report.firstBreak!)}`)
            }
            if (!report.ok) return yield* new CommandFailed({ detail: `the audit chain is broken: ${describeBreak(report.firstBreak!)}` })
          })
          setExit(await runCommand(program, sqlLayerFor(io), { env: io.env, stderr: io.stderr }))
        })
    )
  )
