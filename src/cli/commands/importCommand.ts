import { Command } from "commander"
import { Effect } from "effect"
import { AppConfig } from "../../config.js"
import { BOT_ID_PATTERN } from "../../events/partition.js"
import { importLegacy } from "../import/importer.js"
import type { ImportReport } from "../import/importer.js"
import { verifyLegacyImport } from "../import/verify.js"
import type { VerifyResult } from "../import/verify.js"
import { printJson, printTable } from "../io.js"
import { makeProgress } from "../progress.js"
import { eventLogAndSqlLayer } from "../logAndSql.js"
import type { CliIo } from "../io.js"
import { CommandFailed, runCommand, UsageError } from "../runtime.js"
import { resolveBot } from "../bots/botRef.js"

export const checkBotId = (botId: string): Effect.Effect<string, UsageError> =>
  BOT_ID_PATTERN.test(botId)
    ? Effect.succeed(botId)
    : Effect.fail(new UsageError({ detail: `bot id ${JSON.stringify(botId)} is not valid: use 1 to 64 letters, digits, '_' or '-'` }))

const printReport = (io: CliIo, r: ImportReport): void => {
  printTable(io, r.files.map((f) => ({ file: f.file, format: f.format, records: f.records })))
  io.stdout("")
  printTable(
    io,
    r.plan.collections.map((c) => ({ collection: c.collection, "in files": c.inFiles, new: c.new, changed: c.changed, unchanged: c.unchanged }))
  )
  const t = r.plan.totals
  io.stdout(
    `\n${r.dryRun ? "dry run: would import" : "to import"}: ${t.new + t.changed} of ${t.inFiles} records (${t.new} new, ${t.changed} changed, ${t.unchanged} already imported)` +
      (r.repeated > 0 ? `; ${r.repeated} identical repeats across files counted once` : "")
  )
  if (r.dryRun) return
  io.stdout(r.appended ? `appended ${r.appended.events} events to bot ${r.botId} (versions ${r.appended.fromVersion}..${r.appended.toVersion}), actor import:${r.runId}` : "nothing to append: every record is already in the log")
  io.stdout(`${t.inFiles} records in ${(r.timing.ms / 1000).toFixed(1)} s (${r.timing.recordsPerSecond.toLocaleString("en-US")} records/s)`)
  const rec = r.reconciliation
  if (!rec) return
  io.stdout("\nreconciliation (files vs the bot's stream, read back):")
  printTable(
    io,
    rec.collections.map((c) => ({ collection: c.collection, "in files": c.inFiles, "in log": c.inLog, matched: c.matched, missing: c.missing, different: c.different }))
  )
  if (rec.ok) {
    io.stdout(`reconciled: all ${t.inFiles} records are in the log with the same checksum`)
    io.stdout(`next: start the bot; once its node has run, \`botfleet import ${r.botId} <files> --verify\` checks the bot's state and projections`)
  }
  else {
    io.stdout(`RECONCILIATION FAILED: ${rec.differenceCount} records differ`)
    for (const d of rec.differences) io.stdout(`  ${d.collection} ${JSON.stringify(d.key)} (${d.source}): ${d.problem}`)
  }
}

const printVerify = (io: CliIo, r: VerifyResult): void => {
  io.stdout(`verification of bot ${r.botId} (files vs the bot's state at version ${r.stateVersion}, its last import, and the projections):`)
  printTable(
    io,
    r.collections.map((c) => ({
      collection: c.collection, "in files": c.inFiles, "in state": c.inState, "in projections": c.inProjections, matched: c.matched, different: c.different
    }))
  )
  if (r.ok) io.stdout(`verified: all ${r.records} records are in the bot's state and the projections with the same checksum`)
  else {
    io.stdout(`VERIFICATION FAILED: ${r.differenceCount} differences`)
    for (const d of r.differences) io.stdout(`  ${d.collection} ${JSON.stringify(d.key)} (${d.source}): ${d.problem} in ${d.place}`)
    if (r.differences.some((d) => d.place !== "state")) {
      io.stdout("  (projections are written by a running node: if it has not run since the import, start it and verify again)")
    }
  }
}

/** `botfleet import <bot> <files...> [--dry-run | --verify] [--json]` (docs/import.md). */
export const importCommand = (io: CliIo, setExit: (code: number) => void): Command =>
  new Command("import")
    .description("import a legacy bot's JSON files (telegraf-session-local or the generic layout) into a bot's stream, losslessly")
    .argument("<bot>", "the (registered) bot to import into: its id, or its @username")
    .argument("<files...>", "legacy JSON files")
    .option("--dry-run", "validate and report what would be imported; write nothing")
    .option("--verify", "write nothing; compare the files with the bot's folded state and the projections (exit 1 on any difference)")
    .option("--json", "print the report as JSON")
    .action(async (bot: string, files: Array<string>, opts: { dryRun?: boolean; verify?: boolean; json?: boolean }) => {
      const progress = makeProgress(io, opts.json !== true)
      if (opts.verify) {
        const verify = Effect.gen(function* () {
          if (opts.dryRun) return yield* new UsageError({ detail: "--verify and --dry-run do not go together: --verify writes nothing already" })
          const botId = yield* resolveBot(bot)
          const report = yield* verifyLegacyImport({ botId, files, onProgress: (phase, done, total) => progress.update(phase, done, total) }).pipe(
            Effect.ensuring(Effect.sync(() => progress.stop()))
          )
          if (opts.json) printJson(io, report)
          else printVerify(io, report)
          if (!report.ok) return yield* new CommandFailed({ detail: "the bot's state or projections do not match the files: see the differences above" })
        })
        setExit(await runCommand(verify, eventLogAndSqlLayer, { env: io.env, stderr: io.stderr }))
        return
      }
      const program = Effect.gen(function* () {
        const botId = yield* resolveBot(bot)
        const config = yield* AppConfig
        const report = yield* importLegacy({
          botId,
          files,
          dryRun: opts.dryRun === true,
          nodeId: `import-${config.nodeId}`,
          onProgress: (phase, done, total) => progress.update(phase, done, total)
        }).pipe(Effect.ensuring(Effect.sync(() => progress.stop())))
        if (opts.json) printJson(io, report)
        else printReport(io, report)
        if (report.reconciliation && !report.reconciliation.ok) {
          return yield* new CommandFailed({ detail: "the import wrote events, but the log does not match the files: see the differences above" })
        }
      })
      setExit(await runCommand(program, eventLogAndSqlLayer, { env: io.env, stderr: io.stderr }))
    })
