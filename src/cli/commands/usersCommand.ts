import { Command } from "commander"
import { Effect } from "effect"
import { AppConfig } from "../../config.js"
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

/** `botfleet users tag|untag` (docs/cli.md, docs/broadcasts.md "Tags"). */
export const usersCommand = (io: CliIo, setExit: SetExit): Command => {
  const cmd = new Command("users").description("a bot's users: tag, untag (tags select broadcast segments: tag=vip)")
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
  return cmd
}
