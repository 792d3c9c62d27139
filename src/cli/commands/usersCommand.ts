import { Command } from "commander"
import { Effect } from "effect"
import { makeBotWrites } from "../../api/rest/botWrites.js"
import { AppConfig } from "../../config.js"
import type { ForgetReport } from "../../privacy/forgetUser.js"
import { openStores } from "../../runtime/stores.js"
import { printJson } from "../io.js"
import type { CliIo } from "../io.js"
import { runCommand, UsageError } from "../runtime.js"
import { asSubcommand } from "./botsCommand.js"

type SetExit = (code: number) => void

/** The report as a few lines a person reads. */
export const forgetReportText = (r: ForgetReport): ReadonlyArray<string> => {
  const rows = Object.entries(r.purged).filter(([, n]) => n > 0).map(([t, n]) => `${t} ${n}`)
  return [
    `user ${r.userId} of bot ${r.botId} ${r.alreadyForgotten ? "was already forgotten (key destroyed before)" : "forgotten: key destroyed"}`,
    `rows purged: ${rows.length === 0 ? "none" : rows.join(", ")}`,
    r.clearTextEvents === 0
      ? "events still in clear: none (every personal field of the user in the log now reads [erased])"
      : `events still in clear: ${r.clearTextEvents} (written before sealing: crypto-shredding cannot reach them, docs/privacy.md)`,
    r.recordedAt === null ? "UserForgotten: recorded by an earlier run" : `UserForgotten: recorded (fleet stream version ${r.recordedAt})`
  ]
}

/** `botfleet users forget <bot> <user>` (docs/privacy.md, docs/cli.md). */
export const usersCommand = (io: CliIo, setExit: SetExit): Command => {
  const cmd = new Command("users").description("a bot's users: forget (GDPR erasure)")
  cmd.addCommand(
    asSubcommand(io, new Command("forget")
      .description(
        "forget a user of a bot: destroy their key (every sealed name and text of theirs then reads [erased], in the log, the archive and any backup), " +
        "purge their projection rows, record UserForgotten; idempotent. Reports the user's events written in clear before sealing existed."
      )
      .argument("<bot>", "the bot's id")
      .argument("<user>", "the user's Telegram id")
      .option("--json", "print the report as JSON")
      .action(async (bot: string, user: string, opts: { json?: boolean }) => {
        const program = Effect.scoped(
          Effect.gen(function* () {
            const config = yield* AppConfig
            const s = yield* openStores(config)
            const writes = makeBotWrites({ config, log: s.log, sql: s.sql, node: () => null, userKeys: { keys: s.userKeys, cache: s.keyCache } })
            const report = yield* writes.forgetUser(bot, user, `cli:${process.env["USER"] ?? "unknown"}`, (line) => io.stderr(line)).pipe(
              Effect.catchIf(
                (e): e is { readonly _tag: "ForgetRefused"; readonly reason: string; readonly message: string } =>
                  (e as { _tag?: unknown })?._tag === "ForgetRefused" && (e as { reason?: unknown }).reason === "BadUserId",
                (e) => Effect.fail(new UsageError({ detail: e.message }))
              )
            )
            if (opts.json) printJson(io, report)
            else for (const line of forgetReportText(report)) io.stdout(line)
          })
        )
        setExit(await runCommand(program, undefined, { env: io.env, stderr: io.stderr }))
      })
  ))
  return cmd
}
