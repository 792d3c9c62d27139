import { Command } from "commander"
import { Effect } from "effect"
import { makeBotWrites } from "../../api/rest/botWrites.js"
import { AppConfig } from "../../config.js"
import type { ForgetReport } from "../../privacy/forgetUser.js"
import { handoffPortsOf } from "../../actors/handoffDelivery.js"
import { requestTag } from "../../broadcast/userTagRequests.js"
import { resolveBotRef } from "../bots/botRef.js"
import { storesFor } from "../hosted.js"
import { printJson } from "../io.js"
import type { CliIo } from "../io.js"
import { runCommand, UsageError } from "../runtime.js"
import { asSubcommand } from "./botsCommand.js"
import { UnknownBot } from "../bots/lifecycle.js"

type SetExit = (code: number) => void

const userIdOf = (s: string) =>
  /^\d{1,15}$/.test(s) && Number(s) > 0
    ? Effect.succeed(Number(s))
    : Effect.fail(new UsageError({ detail: `user id ${JSON.stringify(s)} is not a Telegram user id (a positive integer)` }))

/** The report of `users forget` as a few lines a person reads. */
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

/** `botfleet users tag|untag|forget` (docs/cli.md, docs/broadcasts.md "Tags", docs/privacy.md). */
export const usersCommand = (io: CliIo, setExit: SetExit): Command => {
  const cmd = new Command("users").description("a bot's users: tag, untag (tags select broadcast segments: tag=vip), forget (GDPR erasure)")
  for (const [name, on] of [["tag", true], ["untag", false]] as const) {
    cmd.addCommand(
      asSubcommand(io, new Command(name)
        .description(on
          ? "tag a user of a bot (recorded by the bot as a fact on its stream when it takes the request: at once when it runs)"
          : "remove a tag from a user of a bot")
        .argument("<bot>", "the bot's id, or its @username")
        .argument("<user>", "the Telegram user id")
        .argument("<tag>", "1 to 32 lower-case letters, digits, _ or -")
        .option("--json", "print the result as JSON")
        .action(async (ref: string, user: string, tag: string, opts: { json?: boolean }) => {
          const program = Effect.scoped(
            Effect.gen(function* () {
              const userId = yield* userIdOf(user)
              const config = yield* AppConfig
              // inside the embedded node that holds DATA_DIR (a command sent to it): its own stores
              const s = yield* storesFor(io, config)
              const bot = yield* resolveBotRef(s, ref)
              const owner = yield* Effect.promise(() => handoffPortsOf({ log: s.log, inbox: s.inbox }).ownerOf(bot))
              if (owner === null) return yield* new UnknownBot({ botId: bot })
              const r = yield* requestTag(s.inbox, { botId: bot, userId, tag, on })
              if (opts.json) printJson(io, r)
              else io.stdout(`${on ? "tag" : "untag"} ${r.tag} of user ${userId} is in bot ${bot}'s inbox: the bot records it when it takes it`)
            })
          )
          setExit(await runCommand(program, undefined, { env: io.env, stderr: io.stderr }))
        })
    ))
  }
  cmd.addCommand(
    asSubcommand(io, new Command("forget")
      .description(
        "forget a user of a bot: destroy their key (every sealed name and text of theirs then reads [erased], in the log, the archive and any backup), " +
        "purge their projection rows, record UserForgotten; idempotent. Reports the user's events written in clear before sealing existed."
      )
      .argument("<bot>", "the bot's id, or its @username")
      .argument("<user>", "the user's Telegram id")
      .option("--json", "print the report as JSON")
      .action(async (ref: string, user: string, opts: { json?: boolean }) => {
        const program = Effect.scoped(
          Effect.gen(function* () {
            const config = yield* AppConfig
            // inside the embedded node that holds DATA_DIR (a command sent to it): its own stores
            const s = yield* storesFor(io, config)
            const bot = yield* resolveBotRef(s, ref)
            const writes = makeBotWrites({ config, log: s.log, sql: s.sql, node: () => io.host?.node() ?? null, userKeys: { keys: s.userKeys, cache: s.keyCache } })
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
